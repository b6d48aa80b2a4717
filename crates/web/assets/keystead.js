// keystead browser SDK: an ES module, no build step (SPEC §9).
//
//   import { Keystead } from "https://keystead.example.com/sdk/keystead.js";
//   const ks = new Keystead({ apiKey: "pk_…", baseUrl: "https://keystead.example.com" });
//   await ks.init();
//   ks.config.authConfig?.oidcConfig?.buttonLabel;
//   ks.authenticateWithOAuth({ method: "CUSTOM_OIDC", returnTo: location.href });
//   // on the return page:
//   await ks.completeLogin();
//   await ks.getWallets();
//   await ks.signMessage({ walletId, message });
//   await ks.logout();
//
// The PKCE verifier and the app state of a sign-in are kept in
// sessionStorage (this tab only) and checked when the browser comes back.
// The session token is kept in sessionStorage and sent only in an
// Authorization header, never in a URL.

const PENDING = "keystead.pending";
const SESSION = "keystead.session";

/** An error answered by keystead: `code` is a SPEC error code. */
export class KeysteadError extends Error {
  constructor(code, message, hint) {
    super(message);
    this.name = "KeysteadError";
    this.code = code;
    this.hint = hint ?? null;
  }
}

function b64url(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomToken(bytes = 32) {
  const a = new Uint8Array(bytes);
  crypto.getRandomValues(a);
  return b64url(a);
}

async function s256(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return b64url(new Uint8Array(digest));
}

export class Keystead {
  /**
   * @param {{ apiKey: string, baseUrl: string, storage?: Storage }} options
   */
  constructor({ apiKey, baseUrl, storage } = {}) {
    if (!apiKey || !apiKey.startsWith("pk_")) {
      throw new KeysteadError("invalid_request", "apiKey must be the app's publishable key (pk_…)");
    }
    if (!baseUrl) throw new KeysteadError("invalid_request", "baseUrl is required");
    this.apiKey = apiKey;
    this.baseUrl = String(baseUrl).replace(/\/+$/, "");
    this.storage = storage ?? window.sessionStorage;
    this.config = null;
  }

  /** Loads `GET /v1/sdk/config` into `this.config`. */
  async init() {
    this.config = await this.#request("GET", `/v1/sdk/config?api_key=${encodeURIComponent(this.apiKey)}`);
    return this.config;
  }

  /** The session of this tab, or null. */
  get session() {
    const raw = this.storage.getItem(SESSION);
    return raw ? JSON.parse(raw) : null;
  }

  /**
   * Sends the browser to the sign-in (a redirect). `returnTo` must be one of
   * the app's allowed return URLs; `state` is handed back untouched.
   * @param {{ method: "CUSTOM_OIDC", returnTo: string, state?: string, loginHint?: string }} options
   */
  async authenticateWithOAuth({ method, returnTo, state, loginHint } = {}) {
    if (method !== "CUSTOM_OIDC") {
      throw new KeysteadError("invalid_request", `unknown sign-in method ${JSON.stringify(method)}; use "CUSTOM_OIDC"`);
    }
    if (!returnTo) throw new KeysteadError("invalid_request", "returnTo is required");
    const verifier = randomToken(32);
    const appState = state ?? randomToken(16);
    this.storage.setItem(PENDING, JSON.stringify({ verifier, state: appState, returnTo }));
    const url = new URL(`${this.baseUrl}/auth/custom_oidc/start`);
    url.searchParams.set("api_key", this.apiKey);
    url.searchParams.set("return_to", returnTo);
    url.searchParams.set("code_challenge", await s256(verifier));
    url.searchParams.set("code_challenge_method", "S256");
    url.searchParams.set("state", appState);
    if (loginHint) url.searchParams.set("login_hint", loginHint);
    window.location.assign(url.toString());
  }

  /**
   * On the return page: trades the `login_code` for a session, with the PKCE
   * verifier this tab kept. Removes keystead's parameters from the address
   * bar. Resolves to the session (`{ session_token, expires_at, user,
   * wallets }`), or null when the page was not opened by a sign-in.
   */
  async completeLogin(url = window.location.href) {
    const here = new URL(url);
    const code = here.searchParams.get("login_code");
    const error = here.searchParams.get("error");
    const returnedState = here.searchParams.get("state");
    if (!code && !error) return null;
    for (const p of ["login_code", "state", "error", "error_description"]) here.searchParams.delete(p);
    if (window.location.href === url) window.history.replaceState(null, "", here.toString());
    const pending = JSON.parse(this.storage.getItem(PENDING) ?? "null");
    this.storage.removeItem(PENDING);
    if (!pending) {
      throw new KeysteadError("state_invalid", "this tab did not start a sign-in (or it was already completed); start again");
    }
    if (returnedState !== pending.state) {
      throw new KeysteadError("state_invalid", "the sign-in came back with another state than this tab sent; start again");
    }
    if (error) {
      const url2 = new URL(url);
      throw new KeysteadError(error, url2.searchParams.get("error_description") ?? error);
    }
    const session = await this.#request("POST", "/v1/sessions", {
      api_key: this.apiKey,
      login_code: code,
      code_verifier: pending.verifier,
    });
    this.storage.setItem(SESSION, JSON.stringify(session));
    return session;
  }

  /** `GET /v1/me`: the user and their wallets. */
  async me() {
    return this.#request("GET", "/v1/me", undefined, true);
  }

  /** The signed-in user's wallets. */
  async getWallets() {
    return (await this.me()).wallets;
  }

  /** Signs a message with one of the user's wallets; resolves to `{ signature }`. */
  async signMessage({ walletId, message }) {
    if (!walletId) throw new KeysteadError("invalid_request", "walletId is required");
    return this.#request("POST", `/v1/wallets/${encodeURIComponent(walletId)}/sign-message`, { message }, true);
  }

  /** Ends the session at keystead and forgets it in this tab. */
  async logout() {
    const s = this.session;
    this.storage.removeItem(SESSION);
    if (s) {
      await this.#request("DELETE", "/v1/sessions/current", undefined, true, s.session_token);
    }
  }

  async #request(method, path, body, authenticated = false, token) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (authenticated) {
      const t = token ?? this.session?.session_token;
      if (!t) throw new KeysteadError("unauthorized", "not signed in: call completeLogin() after the sign-in");
      headers["Authorization"] = `Bearer ${t}`;
    }
    const resp = await fetch(this.baseUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
    if (resp.status === 204) return null;
    const text = await resp.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    if (!resp.ok) {
      const e = json?.error;
      throw new KeysteadError(e?.code ?? "internal", e?.message ?? `HTTP ${resp.status}`, e?.hint);
    }
    return json;
  }
}

export default Keystead;
