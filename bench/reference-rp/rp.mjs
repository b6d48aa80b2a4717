// Reference relying party for keystead-bench: the same per-login work keystead does,
// written plainly the way a Node developer would write it (openid-client v6, node:http,
// better-sqlite3, @noble/curves). Benchmark code, not a product. See README.md.
//
// Usage: NODE_EXTRA_CA_CERTS=ca.pem node rp.mjs CONFIG.json
//
// Prints exactly one line {"port":N} on stdout once listening on 127.0.0.1 (ephemeral port),
// nothing else on stdout. Exits on SIGTERM/SIGINT and when stdin reaches EOF.

import { readFileSync, writeFileSync, existsSync, realpathSync } from 'node:fs';
import { createServer } from 'node:http';
import { createCipheriv, createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import * as client from 'openid-client';
import Database from 'better-sqlite3';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';

const STATE_TTL = 600; // s, like keystead
const LOGIN_CODE_TTL = 60;
const SESSION_TTL = 30 * 24 * 3600;
const COOKIE = 'rp_browser';

function die(msg) {
  console.error(`reference-rp: ${msg}`);
  process.exit(2);
}

// ---------------------------------------------------------------- config

if (process.argv.length !== 3) die('usage: node rp.mjs CONFIG.json');
let cfg;
try {
  cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
} catch (e) {
  die(`cannot read config ${process.argv[2]}: ${e.message}`);
}
for (const f of ['issuer', 'client_id', 'db']) {
  if (typeof cfg[f] !== 'string' || !cfg[f]) die(`config needs a non-empty string "${f}"`);
}
const authMethod = cfg.token_endpoint_auth_method ?? (cfg.client_secret ? 'client_secret_basic' : 'none');
const clientAuth = {
  client_secret_basic: () => client.ClientSecretBasic(cfg.client_secret),
  client_secret_post: () => client.ClientSecretPost(cfg.client_secret),
  none: () => client.None(),
}[authMethod];
if (!clientAuth) die(`token_endpoint_auth_method must be client_secret_basic, client_secret_post or none, not ${authMethod}`);
if (authMethod !== 'none' && !cfg.client_secret) die(`${authMethod} needs "client_secret"`);
// Node's fetch (which openid-client uses) trusts extra CAs only through NODE_EXTRA_CA_CERTS,
// read once at process start; say so instead of failing later with a TLS error.
if (cfg.ca_file) {
  const real = (p) => { try { return realpathSync(p); } catch { return p; } };
  if (!process.env.NODE_EXTRA_CA_CERTS || real(process.env.NODE_EXTRA_CA_CERTS) !== real(cfg.ca_file)) {
    die(`ca_file is set: start with NODE_EXTRA_CA_CERTS=${cfg.ca_file} (Node reads it only at start)`);
  }
}
const scope = cfg.scope ?? 'openid email';
const allowedReturn = Array.isArray(cfg.allowed_return_urls) ? cfg.allowed_return_urls.map((u) => new URL(u)) : null;

// Wallet keys are sealed under a master key kept in a file beside the database.
const keyFile = cfg.master_key_file ?? `${cfg.db}.key`;
if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(32).toString('base64'), { mode: 0o600 });
const masterKey = Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64');
if (masterKey.length !== 32) die(`${keyFile} must hold 32 bytes, base64`);

// ---------------------------------------------------------------- database

// Two connections to one WAL database: user, identity, wallet and login code are written
// with synchronous=FULL (one fsync per login, like keystead); login states and sessions
// with synchronous=NORMAL (losing them costs a retry).
function open(sync) {
  const db = new Database(cfg.db);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${sync}`);
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return db;
}
const durable = open('FULL');
const fast = open('NORMAL');

durable.exec(`
CREATE TABLE IF NOT EXISTS login_states (
  state_hash TEXT PRIMARY KEY, browser_hash TEXT NOT NULL, return_to TEXT NOT NULL,
  app_state TEXT, app_code_challenge TEXT NOT NULL, nonce TEXT NOT NULL,
  pkce_verifier TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  used_at INTEGER);
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS identities (
  issuer TEXT NOT NULL, sub TEXT NOT NULL, user_id TEXT NOT NULL REFERENCES users(id),
  email TEXT, created_at INTEGER NOT NULL, PRIMARY KEY (issuer, sub));
CREATE TABLE IF NOT EXISTS wallets (
  id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), type TEXT NOT NULL,
  address TEXT NOT NULL UNIQUE, public_key TEXT NOT NULL, wrapped_key BLOB NOT NULL,
  nonce BLOB NOT NULL, ciphertext BLOB NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS wallets_user ON wallets(user_id);
CREATE TABLE IF NOT EXISTS login_codes (
  code_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id),
  code_challenge TEXT NOT NULL, expires_at INTEGER NOT NULL, used_at INTEGER);
CREATE TABLE IF NOT EXISTS sessions (
  token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id),
  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER);
`);

const q = {
  insertState: fast.prepare(`INSERT INTO login_states (state_hash, browser_hash, return_to, app_state,
    app_code_challenge, nonce, pkce_verifier, created_at, expires_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
  peekState: fast.prepare(`SELECT * FROM login_states WHERE state_hash = ? AND browser_hash = ?
    AND used_at IS NULL AND expires_at > ?`),
  useState: durable.prepare('UPDATE login_states SET used_at = ? WHERE state_hash = ? AND used_at IS NULL'),
  useStateFast: fast.prepare('UPDATE login_states SET used_at = ? WHERE state_hash = ? AND used_at IS NULL'),
  findIdentity: fast.prepare('SELECT user_id FROM identities WHERE issuer = ? AND sub = ?'),
  findIdentityTx: durable.prepare('SELECT user_id FROM identities WHERE issuer = ? AND sub = ?'),
  insertUser: durable.prepare('INSERT INTO users (id, created_at) VALUES (?, ?)'),
  insertIdentity: durable.prepare(`INSERT INTO identities (issuer, sub, user_id, email, created_at)
    VALUES (?, ?, ?, ?, ?)`),
  updateEmail: durable.prepare('UPDATE identities SET email = ? WHERE issuer = ? AND sub = ? AND email IS NOT ?'),
  insertWallet: durable.prepare(`INSERT INTO wallets (id, user_id, type, address, public_key, wrapped_key,
    nonce, ciphertext, created_at) VALUES (?, ?, 'EVM', ?, ?, ?, ?, ?, ?)`),
  insertCode: durable.prepare(`INSERT INTO login_codes (code_hash, user_id, code_challenge, expires_at)
    VALUES (?, ?, ?, ?)`),
  findCode: fast.prepare('SELECT * FROM login_codes WHERE code_hash = ? AND used_at IS NULL AND expires_at > ?'),
  useCode: fast.prepare('UPDATE login_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL'),
  insertSession: fast.prepare('INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)'),
  identitiesOf: fast.prepare('SELECT issuer, sub, email FROM identities WHERE user_id = ?'),
  walletsOf: fast.prepare(`SELECT id, type, address, public_key, created_at FROM wallets
    WHERE user_id = ? ORDER BY created_at, id`),
};

// ---------------------------------------------------------------- helpers

const now = () => Math.floor(Date.now() / 1000);
const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const token = (prefix) => `${prefix}${randomBytes(32).toString('base64url')}`;
const s256 = (verifier) => createHash('sha256').update(verifier).digest('base64url');
const isPkceValue = (s) => typeof s === 'string' && /^[A-Za-z0-9._~-]{43,128}$/.test(s);

function sameString(a, b) {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function eip55(addrHex) {
  const hash = Buffer.from(keccak_256(Buffer.from(addrHex, 'ascii'))).toString('hex');
  let out = '0x';
  for (let i = 0; i < 40; i += 1) out += parseInt(hash[i], 16) >= 8 ? addrHex[i].toUpperCase() : addrHex[i];
  return out;
}

function aesGcm(key, plaintext, aad) {
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  if (aad) c.setAAD(aad);
  const ct = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  return { nonce, ct };
}

// A new EVM wallet: secp256k1 key, EIP-55 address, and the private key sealed with a fresh
// data key (AES-256-GCM, AAD = wallet id) that is itself wrapped with the master key.
function newWallet() {
  const id = `wal_${randomUUID()}`;
  const sk = secp256k1.utils.randomSecretKey();
  const pub = secp256k1.getPublicKey(sk, false); // 0x04 ‖ x ‖ y
  const address = eip55(Buffer.from(keccak_256(pub.subarray(1))).subarray(12).toString('hex'));
  // compressed form (as keystead shows it): 02/03 by the parity of y, then x
  const publicKey = `0x0${pub[64] & 1 ? 3 : 2}${Buffer.from(pub.subarray(1, 33)).toString('hex')}`;
  const dek = randomBytes(32);
  const sealed = aesGcm(dek, sk, Buffer.from(`${id}\0wallet-key`));
  const wrapped = aesGcm(masterKey, dek);
  sk.fill(0);
  dek.fill(0);
  return {
    id, address, publicKey,
    wrappedKey: Buffer.concat([wrapped.nonce, wrapped.ct]),
    nonce: sealed.nonce,
    ciphertext: sealed.ct,
  };
}

function returnToAllowed(s) {
  let u;
  try { u = new URL(s); } catch { return false; }
  if (u.hash || u.username || u.password) return false;
  if (['login_code', 'state', 'error', 'error_description'].some((k) => u.searchParams.has(k))) return false;
  if (!allowedReturn) return u.protocol === 'https:' || u.protocol === 'http:';
  return allowedReturn.some((a) => a.protocol === u.protocol && a.host === u.host && a.pathname === u.pathname);
}

function withParams(base, params) {
  const u = new URL(base);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) u.searchParams.append(k, v);
  return u.href;
}

function cookie(req, name) {
  const m = new RegExp(`(?:^|;\\s*)${name}=([^;]*)`).exec(req.headers.cookie ?? '');
  return m ? m[1] : undefined;
}

function send(res, status, obj, headers = {}) {
  const body = `${JSON.stringify(obj)}\n`;
  res.writeHead(status, {
    'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body), ...headers,
  });
  res.end(body);
}
const fail = (res, status, error, error_description) => send(res, status, { error, error_description });

function redirect(res, location, headers = {}) {
  res.writeHead(302, { Location: location, 'Cache-Control': 'no-store', 'Content-Length': 0, ...headers });
  res.end();
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => {
      body += d;
      if (body.length > 16384) { reject(new Error('body too large')); req.destroy(); }
    });
    req.on('end', () => { try { resolve(JSON.parse(body)); } catch (e) { reject(e); } });
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------- the IdP (once, at start)

let oidc;
try {
  oidc = await client.discovery(new URL(cfg.issuer), cfg.client_id, undefined, clientAuth());
} catch (e) {
  die(`discovery of ${cfg.issuer} failed: ${e.message}${e.cause ? ` (${e.cause.message ?? e.cause})` : ''}`);
}
// Verify the ID token's signature against the IdP's JWKS (cached by openid-client), as
// keystead does; by default openid-client relies on the TLS connection to the token endpoint.
client.enableNonRepudiationChecks(oidc);

let publicUrl; // set once listening
const redirectUri = () => `${publicUrl}/callback`;

// ---------------------------------------------------------------- routes

// GET /start?return_to&code_challenge[&code_challenge_method=S256][&state][&login_hint]
async function start(req, res, url) {
  const p = url.searchParams;
  const returnTo = p.get('return_to') ?? '';
  const challenge = p.get('code_challenge') ?? '';
  const appState = p.get('state');
  const loginHint = p.get('login_hint');
  if (returnTo.length > 2048 || !returnToAllowed(returnTo)) return fail(res, 400, 'return_to_not_allowed', 'return_to is not an allowed return URL');
  if ((p.get('code_challenge_method') ?? 'S256') !== 'S256' || !isPkceValue(challenge)) {
    return fail(res, 400, 'pkce_invalid', 'code_challenge must be the base64url SHA-256 of the app\'s code_verifier (S256)');
  }
  if ((appState && appState.length > 512) || (loginHint && loginHint.length > 256)) {
    return fail(res, 400, 'invalid_request', 'state or login_hint is too long');
  }

  const state = client.randomState();
  const nonce = client.randomNonce();
  const verifier = client.randomPKCECodeVerifier();
  const browser = randomBytes(32).toString('base64url');
  const t = now();
  q.insertState.run(sha256(state), sha256(browser), returnTo, appState, challenge, nonce, verifier, t, t + STATE_TTL);

  const params = {
    redirect_uri: redirectUri(),
    scope,
    state,
    nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  };
  if (loginHint) params.login_hint = loginHint;
  const secure = publicUrl.startsWith('https:') ? '; Secure' : '';
  redirect(res, client.buildAuthorizationUrl(oidc, params).href, {
    'Set-Cookie': `${COOKIE}=${browser}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${STATE_TTL}${secure}`,
  });
}

// GET /callback?code&state&iss (or ?error&error_description&state&iss)
async function callback(req, res, url) {
  const state = url.searchParams.get('state');
  const browser = cookie(req, COOKIE);
  const t = now();
  const login = state && browser ? q.peekState.get(sha256(state), sha256(browser), t) : undefined;
  if (!login) {
    return fail(res, 400, 'state_invalid', 'this sign-in link is invalid, expired or already used, or was started in another browser');
  }
  const back = (params) => withParams(login.return_to, { ...params, state: login.app_state });

  let claims;
  try {
    // The URL the IdP sent the browser to, as openid-client wants it: redirect_uri + query.
    const current = new URL(`${redirectUri()}${url.search}`);
    const tokens = await client.authorizationCodeGrant(oidc, current, {
      pkceCodeVerifier: login.pkce_verifier,
      expectedState: state,
      expectedNonce: login.nonce,
      idTokenExpected: true,
    });
    claims = tokens.claims();
    // Ask userinfo when the ID token has no verified email (keystead does the same).
    if (scope.split(' ').includes('email') && claims.email_verified !== true && tokens.access_token) {
      try {
        const info = await client.fetchUserInfo(oidc, tokens.access_token, claims.sub);
        claims = { ...claims, email: info.email, email_verified: info.email_verified };
      } catch (e) {
        // Userinfo about another subject stops the sign-in; any other failure only costs the email.
        if (e.code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED') throw e;
        console.error(`reference-rp: userinfo failed, signing in without email: ${e.message}`);
      }
    }
  } catch (e) {
    q.useStateFast.run(t, login.state_hash);
    // openid-client's own message is generic ("invalid response encountered"); the cause says why.
    const why = e.error_description ?? (e.cause?.message ? `${e.message}: ${e.cause.message}` : e.message);
    console.error(`reference-rp: sign-in failed: ${e.error ?? e.code ?? ''}: ${why}`);
    return redirect(res, back({ error: String(e.error ?? 'login_failed').slice(0, 100), error_description: String(why).slice(0, 200) }));
  }

  const issuer = oidc.serverMetadata().issuer;
  const email = claims.email_verified === true && typeof claims.email === 'string' ? claims.email.toLowerCase() : null;
  // Keys are made and sealed before the transaction; the transaction only writes.
  const fresh = q.findIdentity.get(issuer, claims.sub) ? null : newWallet();
  const code = token('rlc_');
  const finish = durable.transaction(() => {
    if (q.useState.run(t, login.state_hash).changes !== 1) return null; // another request was first
    let userId = q.findIdentityTx.get(issuer, claims.sub)?.user_id;
    if (!userId) {
      const w = fresh ?? newWallet();
      userId = `usr_${randomUUID()}`;
      q.insertUser.run(userId, t);
      q.insertIdentity.run(issuer, claims.sub, userId, email, t);
      q.insertWallet.run(w.id, userId, w.address, w.publicKey, w.wrappedKey, w.nonce, w.ciphertext, t);
    } else if (email) {
      q.updateEmail.run(email, issuer, claims.sub, email);
    }
    q.insertCode.run(sha256(code), userId, login.app_code_challenge, t + LOGIN_CODE_TTL);
    return userId;
  });
  const userId = finish.immediate();
  if (!userId) {
    return fail(res, 400, 'state_invalid', 'this sign-in link was already used');
  }
  redirect(res, back({ login_code: code }));
}

// POST /sessions {login_code, code_verifier} -> {token, expires_at, user:{id, identities}, wallets}
async function sessions(req, res) {
  let body;
  try {
    body = await readJson(req);
  } catch {
    return fail(res, 400, 'invalid_request', 'the body must be JSON {login_code, code_verifier}');
  }
  const { login_code: loginCode, code_verifier: verifier } = body ?? {};
  if (typeof loginCode !== 'string' || typeof verifier !== 'string') {
    return fail(res, 400, 'invalid_request', 'login_code and code_verifier are required strings');
  }
  const t = now();
  const sessionToken = token('rst_');
  const redeem = fast.transaction(() => {
    const row = q.findCode.get(sha256(loginCode), t);
    if (!row || q.useCode.run(t, row.code_hash).changes !== 1) return { error: 'invalid' };
    if (!isPkceValue(verifier) || !sameString(s256(verifier), row.code_challenge)) return { error: 'pkce' };
    q.insertSession.run(sha256(sessionToken), row.user_id, t, t + SESSION_TTL);
    return { userId: row.user_id };
  });
  const r = redeem.immediate();
  if (r.error === 'invalid') return fail(res, 400, 'login_code_invalid', 'login_code is invalid, expired (60 s) or already used');
  if (r.error === 'pkce') return fail(res, 400, 'pkce_invalid', 'code_verifier does not match the code_challenge; the login code is used up');
  const identities = q.identitiesOf.all(r.userId);
  const wallets = q.walletsOf.all(r.userId).map((w) => ({
    id: w.id, type: w.type, address: w.address, publicKey: w.public_key, createdAt: new Date(w.created_at * 1000).toISOString(),
  }));
  send(res, 200, {
    token: sessionToken,
    expires_at: new Date((t + SESSION_TTL) * 1000).toISOString(),
    user: { id: r.userId, identities },
    wallets,
  });
}

// ---------------------------------------------------------------- server

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  let handler;
  if (req.method === 'GET' && url.pathname === '/start') handler = start(req, res, url);
  else if (req.method === 'GET' && url.pathname === '/callback') handler = callback(req, res, url);
  else if (req.method === 'POST' && url.pathname === '/sessions') handler = sessions(req, res);
  else if (req.method === 'GET' && url.pathname === '/healthz') handler = Promise.resolve(send(res, 200, { ok: true }));
  else handler = Promise.resolve(fail(res, 404, 'not_found', `${req.method} ${url.pathname}`));
  handler.catch((e) => {
    console.error('reference-rp: internal error:', e);
    if (!res.headersSent) fail(res, 500, 'internal', 'internal error');
    else res.destroy();
  });
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  publicUrl = (cfg.public_url ?? `http://127.0.0.1:${port}`).replace(/\/+$/, '');
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
server.on('error', (e) => die(`server error: ${e.message}`));

const shutdown = () => {
  try { fast.close(); durable.close(); } catch { /* exiting anyway */ }
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// Die with the parent: the harness keeps our stdin open; EOF means it is gone.
process.stdin.on('end', shutdown);
process.stdin.on('close', shutdown);
process.stdin.resume();
