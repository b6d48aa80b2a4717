// Misbehaving OpenID Provider for keystead's negative tests (modelled on the OpenID
// Foundation RP certification test cases). Hand-written on node:https, no oidc-provider,
// so that every byte of every misbehaviour is under control. See README.md.
//
// Usage: node bad.mjs CONFIG.json
//   CONFIG.json: { "cert": PEM path, "key": PEM path, "client_id": "...", "client_secret": "..." }
//
// One HTTPS server on 127.0.0.1:<ephemeral>. Every scenario is its own provider mounted at
// "/<scenario>" with issuer "https://127.0.0.1:PORT/<scenario>". Prints exactly one line
// `{"port":PORT}` on stdout once listening, nothing else on stdout. Exits on SIGTERM/SIGINT
// and when stdin reaches EOF. IDP_LOG=1 logs every request (and token errors) to stderr.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { createHash, generateKeyPair as generateKeyPairCb, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';

const generateKeyPair = promisify(generateKeyPairCb);
const LOG = !!process.env.IDP_LOG;
const CODE_TTL = 60;
const TOKEN_TTL = 300;

function die(msg) {
  console.error(`bad-idp: ${msg}`);
  process.exit(2);
}

if (process.argv.length !== 3) die('usage: node bad.mjs CONFIG.json');
let config;
try {
  config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
} catch (e) {
  die(`cannot read config ${process.argv[2]}: ${e.message}`);
}
for (const f of ['cert', 'key', 'client_id', 'client_secret']) {
  if (typeof config[f] !== 'string' || !config[f]) die(`config needs a non-empty string "${f}"`);
}
const CLIENT_ID = config.client_id;
const CLIENT_SECRET = config.client_secret;

// ---------------------------------------------------------------- keys

// { kid (may be undefined), alg, privateKey: KeyObject, jwk: public JWK (kty + key params) }
async function rsaKey(kid) {
  const { privateKey, publicKey } = await generateKeyPair('rsa', { modulusLength: 2048 });
  return { kid, alg: 'RS256', privateKey, jwk: publicKey.export({ format: 'jwk' }) };
}
async function ecKey(kid) {
  const { privateKey, publicKey } = await generateKeyPair('ec', { namedCurve: 'P-256' });
  return { kid, alg: 'ES256', privateKey, jwk: publicKey.export({ format: 'jwk' }) };
}
// Public JWKS entry: kty, [kid], use, alg, key params (never private parts).
function publicJwk(k, use = 'sig') {
  const out = { kty: k.jwk.kty };
  if (k.kid !== undefined) out.kid = k.kid;
  out.use = use;
  if (use === 'sig') out.alg = k.alg;
  return { ...out, ...k.jwk };
}

// Default key set: RSA "rsa-1" + P-256 "ec-1", both in the JWKS; signs with the one for
// the scenario's alg. Returns { signing, jwks: [public JWK...] }.
async function defaultKeys(sc) {
  const [rsa, ec] = await Promise.all([rsaKey('rsa-1'), ecKey('ec-1')]);
  return { signing: sc.alg === 'ES256' ? ec : rsa, jwks: [publicJwk(rsa), publicJwk(ec)] };
}

// ---------------------------------------------------------------- scenarios

// Each scenario: name, what it does wrong (desc), and hooks:
//   alg             RS256 (default) | ES256 | HS256 (client secret as key) | none
//   keys(sc, st)    -> { signing, jwks }     (default: defaultKeys)
//   claims(c, x)    mutate the ID token claims c; x = { issuer, now, clientId }
//   corruptSig      flip bits in the signature
//   advertisedIssuer(base) issuer used in discovery AND iss param AND ID token iss
//   issParam(x)     value of "iss" on the authorization response
//   authError       { error, error_description }: /auth redirects back with this error
//   tokenInvalidClient  token endpoint always 401 invalid_client
//   emailVerified   email_verified value (default true)
//   userinfo(u)     mutate the userinfo response
const noEmail = (c) => { delete c.email; delete c.email_verified; };
const SCENARIOS = [
  { name: 'good-rs256', desc: 'correct; RS256, kid rsa-1' },
  { name: 'good-es256', desc: 'correct; ES256, kid ec-1', alg: 'ES256' },
  { name: 'bad-sig-rs256', desc: 'RS256 signature with bits flipped', corruptSig: true },
  { name: 'bad-sig-es256', desc: 'ES256 signature with bits flipped', alg: 'ES256', corruptSig: true },
  { name: 'alg-none', desc: 'header {"alg":"none","typ":"JWT"}, empty signature', alg: 'none' },
  { name: 'hs256-client-secret', desc: 'HS256 with the client secret as HMAC key (discovery lists RS256/ES256 only)', alg: 'HS256' },
  { name: 'iss-mismatch', desc: 'ID token iss = issuer + "-other"', claims: (c, x) => { c.iss = `${x.issuer}-other`; } },
  { name: 'missing-sub', desc: 'no sub claim', claims: (c) => { delete c.sub; } },
  { name: 'wrong-aud', desc: 'aud = "someone-else"', claims: (c) => { c.aud = 'someone-else'; } },
  { name: 'missing-aud', desc: 'no aud claim', claims: (c) => { delete c.aud; } },
  { name: 'multi-aud-no-azp', desc: 'aud = [client_id, "other"], no azp', claims: (c, x) => { c.aud = [x.clientId, 'other']; } },
  { name: 'multi-aud-azp-ok', desc: 'aud = [client_id, "other"], azp = client_id (valid)', claims: (c, x) => { c.aud = [x.clientId, 'other']; c.azp = x.clientId; } },
  { name: 'missing-iat', desc: 'no iat claim', claims: (c) => { delete c.iat; } },
  { name: 'expired', desc: 'exp = now-600, iat = now-900', claims: (c, x) => { c.exp = x.now - 600; c.iat = x.now - 900; } },
  { name: 'iat-future', desc: 'iat = now+600 (exp = now+900, so exp > iat)', claims: (c, x) => { c.iat = x.now + 600; c.exp = x.now + 900; } },
  // An IdP whose clock runs ahead: keystead allows 60 s of skew, no more.
  { name: 'clock-ahead-90', desc: 'the IdP clock is 90 s ahead: iat = now+90, exp = now+690', claims: (c, x) => { c.iat = x.now + 90; c.exp = x.now + 690; } },
  { name: 'clock-ahead-300', desc: 'the IdP clock is 5 minutes ahead: iat = now+300, exp = now+900', claims: (c, x) => { c.iat = x.now + 300; c.exp = x.now + 900; } },
  { name: 'clock-ahead-30', desc: 'the IdP clock is 30 s ahead: iat = now+30, exp = now+630', claims: (c, x) => { c.iat = x.now + 30; c.exp = x.now + 630; } },
  { name: 'nonce-mismatch', desc: 'nonce = "not-the-nonce"', claims: (c) => { c.nonce = 'not-the-nonce'; } },
  { name: 'missing-nonce', desc: 'no nonce claim although one was sent', claims: (c) => { delete c.nonce; } },
  {
    name: 'kid-absent-one-key',
    desc: 'JWKS = one RSA key without kid; header without kid (valid)',
    keys: async () => { const k = await rsaKey(undefined); return { signing: k, jwks: [publicJwk(k)] }; },
  },
  {
    name: 'kid-absent-many-keys',
    desc: 'JWKS = two RSA keys without kid; header without kid; signed by the second key',
    keys: async () => {
      const [k1, k2] = await Promise.all([rsaKey(undefined), rsaKey(undefined)]);
      return { signing: k2, jwks: [publicJwk(k1), publicJwk(k2)] };
    },
  },
  {
    name: 'unknown-kid',
    desc: 'signed by RSA key kid rsa-unknown, which is not in the JWKS (it lists rsa-1 only)',
    keys: async () => {
      const [listed, other] = await Promise.all([rsaKey('rsa-1'), rsaKey('rsa-unknown')]);
      return { signing: other, jwks: [publicJwk(listed)] };
    },
  },
  {
    name: 'rotation',
    desc: 'rot-1 signs the first token only; the next token request switches JWKS and signing to rot-2; POST /rotation/_rotate forces rot-N+1',
    keys: async (sc, st) => {
      st.rot = { n: 1, autoPending: true, issuedWithCurrent: 0 };
      const k = await rsaKey('rot-1');
      return { signing: k, jwks: [publicJwk(k)] };
    },
  },
  // Resource scenarios (issue 7): oversized, padded and failing documents. A path segment
  // `<scenario>~<tag>` mounts the same scenario under its own issuer, so a test can make
  // many distinct URLs.
  { name: 'huge-docs', desc: 'discovery and JWKS valid but padded to ~1 MiB each', pad: 1024 * 1024 },
  { name: 'padded-docs', desc: 'discovery and JWKS valid, padded to ~200 KB each (under the 256 KiB cap)', pad: 200 * 1000 },
  // Discovery documents Verify must fail or warn about (its checks, issue 12).
  { name: 'verify-http-token-endpoint', desc: 'token_endpoint is http://', discoveryPatch: (d) => { d.token_endpoint = d.token_endpoint.replace('https:', 'http:'); } },
  { name: 'verify-private-jwks', desc: 'jwks_uri on a private address (10.0.0.1): refused without a connection', discoveryPatch: (d) => { d.jwks_uri = 'https://10.0.0.1/jwks'; } },
  { name: 'verify-hs-none-only', desc: 'id_token_signing_alg_values_supported = [HS256, none]', discoveryPatch: (d) => { d.id_token_signing_alg_values_supported = ['HS256', 'none']; } },
  { name: 'verify-no-pkce', desc: 'no code_challenge_methods_supported', discoveryPatch: (d) => { delete d.code_challenge_methods_supported; } },
  { name: 'verify-openid-scope-only', desc: 'scopes_supported = [openid]', discoveryPatch: (d) => { d.scopes_supported = ['openid']; } },
  { name: 'verify-post-only', desc: 'token_endpoint_auth_methods_supported = [client_secret_post]', discoveryPatch: (d) => { d.token_endpoint_auth_methods_supported = ['client_secret_post']; } },
  { name: 'discovery-redirect', desc: 'discovery answers 302 to /<scenario>/moved (an RP must not follow: it would fetch a URL nobody checked); GET /<scenario>/_stats counts both', discoveryRedirect: true },
  { name: 'discovery-down', desc: 'discovery answers 503 after 300 ms; GET /<scenario>/_stats counts fetches', discoveryDown: 300 },
  { name: 'discovery-issuer-mismatch', desc: 'advertised issuer = issuer + "x" (discovery, iss param, ID token)', advertisedIssuer: (b) => `${b}x` },
  { name: 'discovery-issuer-trailing-slash', desc: 'advertised issuer = issuer + "/" (discovery, iss param, ID token)', advertisedIssuer: (b) => `${b}/` },
  {
    name: 'userinfo-sub-mismatch',
    desc: 'ID token without email/email_verified; userinfo sub = "someone-else" (with email)',
    claims: noEmail,
    userinfo: (u) => { u.sub = 'someone-else'; },
  },
  { name: 'userinfo-needed', desc: 'ID token without email/email_verified; userinfo has them, same sub (valid)', claims: noEmail },
  { name: 'iss-param-mismatch', desc: 'authorization response iss = https://evil.example', issParam: () => 'https://evil.example' },
  {
    name: 'idp-error-redirect-uri',
    desc: 'auth redirects back with error=invalid_request (redirect_uri did not match any registered URI)',
    authError: { error: 'invalid_request', error_description: 'redirect_uri did not match any registered URI' },
  },
  {
    name: 'auth-error-access-denied',
    desc: 'auth redirects back with error=access_denied',
    authError: { error: 'access_denied', error_description: 'end-user denied the request' },
  },
  { name: 'token-invalid-client', desc: 'token endpoint always 401 {"error":"invalid_client"}', tokenInvalidClient: true },
  { name: 'unverified-email', desc: 'email_verified = false (ID token and userinfo)', emailVerified: false },
  {
    name: 'jwks-enc-only',
    desc: 'the only JWKS key (kid rsa-1, the signing key) has "use":"enc"',
    keys: async () => { const k = await rsaKey('rsa-1'); return { signing: k, jwks: [publicJwk(k, 'enc')] }; },
  },
];
const byName = new Map(SCENARIOS.map((s) => [s.name, s]));

// Per-scenario runtime state. Keys are generated on first use of the scenario (fresh per
// process), so startup is instant even though there are ~30 scenarios.
const states = new Map();
function stateOf(sc) {
  let st = states.get(sc.name);
  if (!st) {
    st = { codes: new Map(), tokens: new Map(), hits: { discovery: 0, jwks: 0, moved: 0 } };
    st.keys = (sc.keys ?? defaultKeys)(sc, st);
    st.keys.catch((e) => console.error(`bad-idp[${sc.name}] key generation failed:`, e));
    states.set(sc.name, st);
  }
  return st;
}

// rotation: replace the only key by rot-(n+1), in the JWKS and for signing.
async function rotate(st) {
  await st.keys;
  st.rot.n += 1;
  st.rot.autoPending = false;
  st.rot.issuedWithCurrent = 0;
  const kid = `rot-${st.rot.n}`;
  st.keys = rsaKey(kid).then((k) => ({ signing: k, jwks: [publicJwk(k)] }));
  await st.keys;
  return kid;
}

// ---------------------------------------------------------------- helpers

const now = () => Math.floor(Date.now() / 1000);
const rand = (n = 32) => randomBytes(n).toString('base64url');
const b64json = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const formDecode = (s) => decodeURIComponent(s.replace(/\+/g, ' '));

function safeEqual(a, b) {
  const h = (s) => createHash('sha256').update(String(s)).digest();
  return timingSafeEqual(h(a), h(b)) && a === b;
}

function send(res, status, type, body, headers = {}) {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.end(body);
}
const json = (res, status, obj, headers) => send(res, status, 'application/json', `${JSON.stringify(obj)}\n`, headers);
const oauthError = (res, status, error, error_description, headers) => json(res, status, error_description ? { error, error_description } : { error }, headers);

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => {
      body += d;
      if (body.length > 65536) { reject(new Error('body too large')); req.destroy(); }
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function redirect(res, location) {
  res.statusCode = 302;
  res.setHeader('Location', location);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', '0');
  res.end();
}

// ---------------------------------------------------------------- ID token

async function buildIdToken(sc, st, x, grant) {
  const c = {
    iss: x.issuer,
    sub: grant.sub,
    aud: CLIENT_ID,
    exp: x.now + TOKEN_TTL,
    iat: x.now,
  };
  if (grant.nonce !== undefined) c.nonce = grant.nonce;
  c.email = `${grant.sub}@example.test`;
  c.email_verified = sc.emailVerified ?? true;
  sc.claims?.(c, x);

  const alg = sc.alg ?? 'RS256';
  if (alg === 'none') return { jwt: `${b64json({ alg: 'none', typ: 'JWT' })}.${b64json(c)}.`, kid: undefined };
  if (alg === 'HS256') {
    const jwt = await new SignJWT(c).setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(new TextEncoder().encode(CLIENT_SECRET));
    return { jwt, kid: undefined };
  }

  if (st.rot?.autoPending && st.rot.issuedWithCurrent >= 1) await rotate(st);
  const { signing } = await st.keys;
  const header = { alg: signing.alg };
  if (signing.kid !== undefined) header.kid = signing.kid;
  header.typ = 'JWT';
  let jwt = await new SignJWT(c).setProtectedHeader(header).sign(signing.privateKey);
  if (st.rot) st.rot.issuedWithCurrent += 1;
  if (sc.corruptSig) {
    const [h, p, s] = jwt.split('.');
    const sig = Buffer.from(s, 'base64url');
    sig[sig.length - 1] ^= 0x0f; // low bits of RSA s / of ECDSA s
    sig[(sig.length >> 1) - 1] ^= 0x0f; // middle byte (low bits of ECDSA r)
    jwt = `${h}.${p}.${sig.toString('base64url')}`;
  }
  return { jwt, kid: signing.kid };
}

// ---------------------------------------------------------------- endpoints

// An unknown member of `sc.pad` bytes: valid JSON that a careful RP ignores.
function padded(sc, doc) {
  return sc.pad ? { ...doc, x_padding: 'p'.repeat(sc.pad) } : doc;
}

function discovery(sc, base, issuer) {
  const d = baseDiscovery(base, issuer);
  if (sc.discoveryPatch) sc.discoveryPatch(d, base);
  return d;
}

function baseDiscovery(base, issuer) {
  return {
    issuer,
    authorization_endpoint: `${base}/auth`,
    token_endpoint: `${base}/token`,
    jwks_uri: `${base}/jwks`,
    userinfo_endpoint: `${base}/userinfo`,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256', 'ES256'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    code_challenge_methods_supported: ['S256'],
    scopes_supported: ['openid', 'email'],
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nonce', 'azp', 'email', 'email_verified'],
    authorization_response_iss_parameter_supported: true,
  };
}

async function authEndpoint(sc, st, x, req, res, url) {
  let params;
  if (req.method === 'GET') params = url.searchParams;
  else if (req.method === 'POST') params = new URLSearchParams(await readBody(req));
  else return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, POST' });

  // Like a real IdP: no redirect when the client or the redirect_uri is not usable.
  if (params.get('client_id') !== CLIENT_ID) {
    return oauthError(res, 400, 'invalid_client', `unknown client_id (this IdP knows only ${JSON.stringify(CLIENT_ID)})`);
  }
  let target;
  try {
    target = new URL(params.get('redirect_uri') ?? '');
    if (!/^https?:$/.test(target.protocol) || target.hash) throw new Error('bad redirect_uri');
  } catch {
    return oauthError(res, 400, 'invalid_request', 'redirect_uri missing or not an absolute http(s) URL without fragment');
  }
  const state = params.get('state');
  const iss = sc.issParam ? sc.issParam(x) : x.issuer;
  const back = (p) => {
    for (const [k, v] of Object.entries(p)) target.searchParams.append(k, v);
    if (state !== null) target.searchParams.append('state', state);
    target.searchParams.append('iss', iss);
    redirect(res, target.href);
  };
  const fail = (error, error_description) => back({ error, error_description });

  if (sc.authError) return fail(sc.authError.error, sc.authError.error_description);
  if (params.get('response_type') !== 'code') return fail('unsupported_response_type', 'only response_type=code is supported');
  if (params.has('response_mode') && params.get('response_mode') !== 'query') return fail('invalid_request', 'only response_mode=query is supported');
  if (!(params.get('scope') ?? '').split(' ').includes('openid')) return fail('invalid_request', 'openid scope must be requested');
  if (!params.get('code_challenge')) return fail('invalid_request', 'Authorization Server policy requires PKCE to be used for this request');
  if (params.get('code_challenge_method') !== 'S256') return fail('invalid_request', 'code_challenge_method must be S256');

  const code = rand();
  st.codes.set(code, {
    client_id: CLIENT_ID,
    redirect_uri: params.get('redirect_uri'),
    code_challenge: params.get('code_challenge'),
    nonce: params.get('nonce') ?? undefined,
    scope: params.get('scope'),
    sub: params.get('login_hint') || 'bad-user-1',
    exp: x.now + CODE_TTL,
  });
  return back({ code });
}

// RFC 6749 2.3.1: client_secret_basic (id and secret form-urlencoded, then base64),
// client_secret_post, or none (client_id only; PKCE still required).
function authenticateClient(req, form) {
  const h = req.headers.authorization;
  const bodyId = form.get('client_id');
  const bodySecret = form.get('client_secret');
  const www = h ? { 'WWW-Authenticate': 'Basic realm="bad-idp"' } : {};
  const invalidClient = (d) => ({ status: 401, error: 'invalid_client', error_description: d, headers: www });
  let id; let secret; let method;
  if (h) {
    const m = /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(h);
    if (!m) return invalidClient('only HTTP Basic client authentication is supported in the Authorization header');
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) return invalidClient('malformed Basic credentials');
    try {
      id = formDecode(decoded.slice(0, i));
      secret = formDecode(decoded.slice(i + 1));
    } catch {
      return { status: 400, error: 'invalid_request', error_description: 'client_id and client_secret in the authorization header are not properly encoded' };
    }
    if (bodySecret !== null) return { status: 400, error: 'invalid_request', error_description: 'client authentication must only be provided using one mechanism' };
    if (bodyId !== null && bodyId !== id) return { status: 400, error: 'invalid_request', error_description: 'mismatch in body and authorization client ids' };
    method = 'client_secret_basic';
  } else if (bodySecret !== null) {
    id = bodyId; secret = bodySecret; method = 'client_secret_post';
  } else if (bodyId !== null) {
    id = bodyId; method = 'none';
  } else {
    return invalidClient('no client authentication mechanism provided');
  }
  if (id !== CLIENT_ID) return invalidClient('client is invalid (unknown client_id)');
  if (method !== 'none' && !safeEqual(secret, CLIENT_SECRET)) return invalidClient('client authentication failed (invalid secret provided)');
  return { method };
}

async function tokenEndpoint(sc, st, x, req, res) {
  if (req.method !== 'POST') return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'POST' });
  const body = await readBody(req);
  if (sc.tokenInvalidClient) return json(res, 401, { error: 'invalid_client' });
  const ct = String(req.headers['content-type'] ?? '');
  if (!/^application\/x-www-form-urlencoded\b/i.test(ct)) {
    return oauthError(res, 400, 'invalid_request', 'only application/x-www-form-urlencoded content-type bodies are supported');
  }
  const form = new URLSearchParams(body);
  const client = authenticateClient(req, form);
  if (client.error) {
    if (LOG) console.error(`bad-idp[${sc.name}] token: ${client.error}: ${client.error_description}`);
    return oauthError(res, client.status, client.error, client.error_description, client.headers);
  }
  const grantErr = (d) => {
    if (LOG) console.error(`bad-idp[${sc.name}] token: invalid_grant: ${d}`);
    return oauthError(res, 400, 'invalid_grant', d);
  };
  if (form.get('grant_type') !== 'authorization_code') {
    return oauthError(res, 400, 'unsupported_grant_type', 'only grant_type=authorization_code is supported');
  }
  const code = form.get('code');
  if (!code) return oauthError(res, 400, 'invalid_request', "missing required parameter 'code'");
  const grant = st.codes.get(code);
  st.codes.delete(code); // single use, whatever happens next
  if (!grant || grant.exp < x.now) return grantErr('grant request is invalid (authorization code unknown, expired or already used)');
  if (grant.client_id !== CLIENT_ID) return grantErr('authorization code was issued to another client');
  if (form.get('redirect_uri') !== grant.redirect_uri) return grantErr('redirect_uri does not match the authorization request');
  const verifier = form.get('code_verifier');
  if (!verifier || !/^[A-Za-z0-9._~-]{43,128}$/.test(verifier)) return grantErr('PKCE verification failed (code_verifier missing or malformed)');
  if (createHash('sha256').update(verifier).digest('base64url') !== grant.code_challenge) {
    return grantErr('PKCE verification failed');
  }

  const { jwt } = await buildIdToken(sc, st, x, grant);
  const accessToken = rand();
  st.tokens.set(accessToken, { sub: grant.sub, scope: grant.scope, exp: x.now + TOKEN_TTL });
  return json(res, 200, {
    access_token: accessToken,
    token_type: 'Bearer',
    expires_in: TOKEN_TTL,
    scope: grant.scope,
    id_token: jwt,
  }, { Pragma: 'no-cache' });
}

function userinfoEndpoint(sc, st, x, req, res) {
  if (req.method !== 'GET' && req.method !== 'POST') return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, POST' });
  const m = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '');
  if (!m) return oauthError(res, 401, 'invalid_request', 'no access token provided', { 'WWW-Authenticate': `Bearer realm="${sc.name}"` });
  const t = st.tokens.get(m[1]);
  if (!t || t.exp < x.now) {
    return oauthError(res, 401, 'invalid_token', 'invalid token provided', { 'WWW-Authenticate': `Bearer realm="${sc.name}", error="invalid_token"` });
  }
  const u = { sub: t.sub, email: `${t.sub}@example.test`, email_verified: sc.emailVerified ?? true };
  sc.userinfo?.(u);
  return json(res, 200, u);
}

// ---------------------------------------------------------------- server

let PORT;

async function dispatch(req, res) {
  const url = new URL(req.url, `https://127.0.0.1:${PORT}`);
  const segs = url.pathname.split('/');
  if (url.pathname === '/_scenarios') return json(res, 200, SCENARIOS.map((s) => s.name));
  const mount = segs[1] ?? '';
  const sc = byName.get(mount.split('~')[0]);
  if (!sc) return json(res, 404, { error: 'not_found', scenarios: SCENARIOS.map((s) => s.name) });
  const rest = `/${segs.slice(2).join('/')}`;
  const base = `https://127.0.0.1:${PORT}/${mount}`;
  const st = stateOf(sc);
  const x = { issuer: sc.advertisedIssuer ? sc.advertisedIssuer(base) : base, now: now(), clientId: CLIENT_ID };

  switch (rest) {
    case '/.well-known/openid-configuration':
      if (req.method !== 'GET') break;
      st.hits.discovery += 1;
      if (sc.discoveryRedirect) {
        res.writeHead(302, { location: `${base}/moved` });
        return res.end();
      }
      if (sc.discoveryDown) {
        await new Promise((r) => { setTimeout(r, sc.discoveryDown); });
        return json(res, 503, { error: 'temporarily_unavailable' });
      }
      return json(res, 200, padded(sc, discovery(sc, base, x.issuer)));
    case '/jwks':
      if (req.method !== 'GET') break;
      st.hits.jwks += 1;
      return json(res, 200, padded(sc, { keys: (await st.keys).jwks }));
    case '/moved':
      st.hits.moved += 1;
      return json(res, 200, discovery(sc, base, x.issuer));
    case '/_stats':
      return json(res, 200, st.hits);
    case '/auth':
      return authEndpoint(sc, st, x, req, res, url);
    case '/token':
      return tokenEndpoint(sc, st, x, req, res);
    case '/userinfo':
      return userinfoEndpoint(sc, st, x, req, res);
    case '/_rotate':
      if (!st.rot || req.method !== 'POST') break;
      return json(res, 200, { kid: await rotate(st) });
    default:
  }
  return json(res, 404, { error: 'not_found' });
}

let tls;
try {
  tls = { cert: readFileSync(config.cert), key: readFileSync(config.key) };
} catch (e) {
  die(`cannot read cert/key: ${e.message}`);
}
const server = createServer(tls, (req, res) => {
  if (LOG) res.on('finish', () => console.error(`bad-idp: ${req.method} ${req.url} -> ${res.statusCode}`));
  dispatch(req, res).catch((err) => {
    console.error('bad-idp: internal error:', err);
    if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `internal error: ${err.message}\n`);
    else res.destroy();
  });
});

server.listen(0, '127.0.0.1', () => {
  PORT = server.address().port;
  process.stdout.write(`${JSON.stringify({ port: PORT })}\n`);
});
server.on('error', (e) => die(`server error: ${e.message}`));

const shutdown = () => process.exit(0);
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// Die with the parent: the test harness keeps our stdin open; EOF means it is gone.
process.stdin.on('end', shutdown);
process.stdin.on('close', shutdown);
process.stdin.resume();
