// Test OpenID Provider for keystead's integration tests.
//
// Usage: node server.mjs CONFIG.json
//
// Serves every configured provider from ONE https server on 127.0.0.1:<ephemeral>,
// provider "<name>" mounted under "/<name>" with issuer "https://127.0.0.1:PORT/<name>".
// Prints exactly one line `{"port":PORT}` on stdout once listening; everything else
// (including oidc-provider's own notices) goes to stderr. Exits on SIGTERM/SIGINT and
// when stdin is closed. See README.md.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';

// oidc-provider prints notices with console.info (stdout). stdout is reserved for the
// ready line, so route the console's stdout methods to stderr before loading it.
for (const m of ['log', 'info', 'debug']) {
  console[m] = (...args) => console.error(...args);
}
const { default: Provider } = await import('oidc-provider');

const DEFAULT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'none'];
const ID_TOKEN_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'];
const LOG = !!process.env.IDP_LOG;

function die(msg) {
  console.error(`idp: ${msg}`);
  process.exit(2);
}

if (process.argv.length !== 3) die('usage: node server.mjs CONFIG.json');
let config;
try {
  config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
} catch (e) {
  die(`cannot read config ${process.argv[2]}: ${e.message}`);
}
if (!config.cert || !config.key) die('config needs "cert" and "key"');
if (!Array.isArray(config.providers) || !config.providers.length) die('config needs "providers"');
for (const p of config.providers) {
  if (typeof p.name !== 'string' || !/^[A-Za-z0-9._~-]+$/.test(p.name)) {
    die(`bad provider name ${JSON.stringify(p.name)} (one URL path segment: [A-Za-z0-9._~-]+)`);
  }
}
if (new Set(config.providers.map((p) => p.name)).size !== config.providers.length) {
  die('duplicate provider names');
}

// ---------------------------------------------------------------- signing keys

function signingKeys(name) {
  const tag = randomBytes(4).toString('hex');
  const jwk = (kind, opts, kid) => ({
    ...generateKeyPairSync(kind, opts).privateKey.export({ format: 'jwk' }),
    kid,
    use: 'sig',
  });
  // No "alg" on the RSA key: oidc-provider then uses it for both RS256 and PS256.
  return {
    keys: [
      jwk('rsa', { modulusLength: 2048 }, `${name}-rsa-${tag}`),
      jwk('ec', { namedCurve: 'P-256' }, `${name}-p256-${tag}`),
      jwk('ed25519', undefined, `${name}-ed25519-${tag}`),
    ],
  };
}

// ---------------------------------------------------------------- accounts

// A login "x-<base64url of a JSON object>" overrides the claims with that
// object (null removes a claim): the tests assert any email they need.
function claimOverrides(sub) {
  if (!sub.startsWith('x-')) return {};
  try {
    return JSON.parse(Buffer.from(sub.slice(2), 'base64url').toString('utf8'));
  } catch {
    return {};
  }
}

async function findAccount(ctx, sub) {
  return {
    accountId: sub,
    async claims() {
      const claims = {
        sub,
        email: `${sub}@example.test`,
        email_verified: !sub.startsWith('unverified-'),
        name: sub,
      };
      for (const [k, v] of Object.entries(claimOverrides(sub))) {
        if (v === null) delete claims[k];
        else claims[k] = v;
      }
      return claims;
    },
  };
}

// ---------------------------------------------------------------- cookies

const cookieKey = randomBytes(32).toString('base64url');
const RESUME_COOKIE = '_interaction_resume';

// Same signature the `cookies`/`keygrip` modules (used by Koa) compute: HMAC-SHA1 of
// "name=value" with keys[0], base64url without padding.
function cookieSig(name, value) {
  return createHmac('sha1', cookieKey).update(`${name}=${value}`).digest('base64url');
}

function cookieHeader(req) {
  const h = req.headers.cookie;
  return Array.isArray(h) ? h.join('; ') : (h || '');
}

// Drop the OP session cookies: every authorization request starts a fresh login, so
// login_hint always decides who gets logged in (no sticky SSO session between tests).
function stripSessionCookies(req) {
  const kept = cookieHeader(req).split(';').map((c) => c.trim())
    .filter((c) => c && !/^_session(\.|=)/.test(c));
  if (kept.length) req.headers.cookie = kept.join('; ');
  else delete req.headers.cookie;
}

// ---------------------------------------------------------------- providers

function makeProvider(p, issuer) {
  const authMethods = p.authMethods ?? DEFAULT_AUTH_METHODS;
  const pkceRequired = p.pkceRequired ?? true;
  const provider = new Provider(issuer, {
    clients: (p.clients ?? []).map((c) => ({ ...c })),
    clientAuthMethods: authMethods,
    findAccount,
    jwks: signingKeys(p.name),
    cookies: { keys: [cookieKey] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    // Put the scope-requested claims into the ID token even when an access token is
    // issued too (oidc-provider's default, true, would leave them to userinfo only).
    conformIdTokenClaims: false,
    pkce: { required: () => pkceRequired },
    enabledJWA: { idTokenSigningAlgValues: ID_TOKEN_ALGS },
    clientBasedCORS: () => true,
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: { enabled: false },
    },
    interactions: {
      // Default is "/interaction/<uid>" relative to the host root, i.e. outside the mount.
      url: (ctx, interaction) => `/${p.name}/interaction/${interaction.uid}`,
    },
  });
  provider.on('server_error', (ctx, err) => console.error(`idp[${p.name}] server_error:`, err));
  if (LOG) {
    for (const ev of ['authorization.error', 'grant.error', 'userinfo.error', 'introspection.error']) {
      provider.on(ev, (ctx, err) => console.error(`idp[${p.name}] ${ev}: ${err.message} ${err.error_description ?? ''}`));
    }
  }
  return provider;
}

// ---------------------------------------------------------------- interactions

function parseForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => {
      body += d;
      if (body.length > 65536) reject(new Error('body too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function send(res, status, type, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

async function finish(entry, interaction, result, res) {
  interaction.result = result;
  await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
  entry.autoResume.add(interaction.uid);
  res.statusCode = 303;
  res.setHeader('Location', interaction.returnTo);
  res.setHeader('Content-Length', '0');
  res.end();
}

// Log the account in AND grant consent for everything requested, in one interaction.
async function loginAndConsent(entry, interaction, accountId, res) {
  const { provider } = entry;
  const { params, prompt } = interaction;
  const result = {};
  if (prompt.name === 'login' || !interaction.session?.accountId) {
    result.login = { accountId };
  } else {
    accountId = interaction.session.accountId;
  }

  const grant = interaction.grantId
    ? await provider.Grant.find(interaction.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  if (params.scope) grant.addOIDCScope(params.scope);
  if (params.claims) {
    try {
      const claims = JSON.parse(params.claims);
      const names = new Set([
        ...Object.keys(claims.id_token ?? {}),
        ...Object.keys(claims.userinfo ?? {}),
      ]);
      if (names.size) grant.addOIDCClaims([...names]);
    } catch { /* invalid claims param is rejected by oidc-provider before this point */ }
  }
  const details = prompt.details ?? {};
  for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  if (params.resource && params.scope) {
    for (const r of [].concat(params.resource)) grant.addResourceScope(r, params.scope);
  }
  result.consent = { grantId: await grant.save() };
  await finish(entry, interaction, result, res);
}

function loginPage(entry, interaction) {
  const action = `/${entry.name}/interaction/${interaction.uid}`;
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>keystead test IdP: ${esc(entry.name)}</title></head>
<body>
<h1>Sign in to ${esc(entry.name)}</h1>
<p>Client: ${esc(interaction.params.client_id)}. Tip: add <code>login_hint=NAME</code> to the authorization request to skip this page.</p>
<form method="post" action="${esc(action)}">
<input type="text" name="login" placeholder="username" autofocus required>
<button type="submit" name="action" value="login">Sign in</button>
<button type="submit" name="action" value="deny" formnovalidate>Deny</button>
</form>
</body></html>`;
}

async function handleInteraction(entry, uid, req, res) {
  const interaction = await entry.provider.Interaction.find(uid);
  if (!interaction) return send(res, 400, 'text/plain; charset=utf-8', 'interaction not found or expired\n');

  if (req.method === 'GET') {
    const hint = interaction.params.login_hint;
    if (hint) return loginAndConsent(entry, interaction, hint, res);
    if (interaction.prompt.name !== 'login' && interaction.session?.accountId) {
      return loginAndConsent(entry, interaction, interaction.session.accountId, res);
    }
    return send(res, 200, 'text/html; charset=utf-8', loginPage(entry, interaction));
  }
  if (req.method === 'POST') {
    const form = await parseForm(req);
    if (form.get('action') === 'deny') {
      return finish(entry, interaction, {
        error: 'access_denied', error_description: 'end-user denied the request',
      }, res);
    }
    const login = form.get('login');
    if (!login) return send(res, 400, 'text/plain; charset=utf-8', 'missing login\n');
    return loginAndConsent(entry, interaction, login, res);
  }
  return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
}

// ---------------------------------------------------------------- server

const entries = new Map(); // name -> { name, provider, handler, autoResume }

async function dispatch(req, res) {
  const originalUrl = req.url;
  const qi = originalUrl.indexOf('?');
  const pathname = qi === -1 ? originalUrl : originalUrl.slice(0, qi);
  const name = pathname.split('/')[1];
  const entry = entries.get(name);
  if (!entry) {
    return send(res, 404, 'application/json', `${JSON.stringify({ error: 'not_found', providers: [...entries.keys()] })}\n`);
  }
  let rest = originalUrl.slice(name.length + 1);
  if (!rest.startsWith('/')) rest = `/${rest}`;
  const restPath = rest.split('?')[0];

  const im = /^\/interaction\/([^/]+)$/.exec(restPath);
  if (im) return handleInteraction(entry, decodeURIComponent(im[1]), req, res);

  stripSessionCookies(req);
  // Clients without a cookie jar: the resume step needs the (signed) resume cookie set at
  // the start of the interaction; supply it for interactions this fixture completed.
  const rm = /^\/auth\/([^/]+)$/.exec(restPath);
  if (rm && entry.autoResume.has(rm[1]) && !cookieHeader(req).includes(`${RESUME_COOKIE}=`)) {
    entry.autoResume.delete(rm[1]);
    const c = `${RESUME_COOKIE}=${rm[1]}; ${RESUME_COOKIE}.sig=${cookieSig(RESUME_COOKIE, rm[1])}`;
    req.headers.cookie = req.headers.cookie ? `${req.headers.cookie}; ${c}` : c;
  }

  // Express-style mounting: oidc-provider derives the mount path from originalUrl/url.
  req.originalUrl = originalUrl;
  req.baseUrl = `/${name}`;
  req.url = rest;
  return entry.handler(req, res);
}

const server = createServer({
  cert: readFileSync(config.cert),
  key: readFileSync(config.key),
}, (req, res) => {
  if (LOG) res.on('finish', () => console.error(`idp: ${req.method} ${req.originalUrl ?? req.url} -> ${res.statusCode}`));
  dispatch(req, res).catch((err) => {
    console.error('idp: internal error:', err);
    if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `internal error: ${err.message}\n`);
    else res.destroy();
  });
});

server.listen(0, '127.0.0.1', async () => {
  const { port } = server.address();
  for (const p of config.providers) {
    try {
      const provider = makeProvider(p, `https://127.0.0.1:${port}/${p.name}`);
      // oidc-provider validates static clients lazily; force it now so a bad config fails
      // at startup instead of as an opaque invalid_client in the middle of a test.
      for (const c of p.clients ?? []) await provider.Client.find(c.client_id);
      entries.set(p.name, {
        name: p.name, provider, handler: provider.callback(), autoResume: new Set(),
      });
    } catch (e) {
      die(`invalid configuration for provider ${JSON.stringify(p.name)}: ${e.message}${e.error_description ? ` (${e.error_description})` : ''}`);
    }
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
server.on('error', (e) => die(`server error: ${e.message}`));

const shutdown = () => process.exit(0);
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// Die with the parent: the test harness keeps our stdin open; EOF means it is gone.
process.stdin.on('end', shutdown);
process.stdin.on('close', shutdown);
process.stdin.resume();
