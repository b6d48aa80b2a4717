// Stand-alone measurement of the reference RP alone (keystead-bench is the tool that runs
// it beside keystead): a throwaway CA (openssl), tests/idp/bad.mjs, rp.mjs, then full
// logins (start -> IdP -> callback -> POST /sessions) from simulated browsers, and the RP
// process's CPU time per login from /proc, for first and for returning logins.
//
// Usage: node measure.mjs [--logins 200] [--concurrency 4] [--scenario good-rs256]
// Needs: install.sh done, tests/idp/node_modules (npm ci there), openssl.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { parseArgs } from 'node:util';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '../..');
const { values: args } = parseArgs({
  options: {
    logins: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '4' },
    scenario: { type: 'string', default: 'good-rs256' },
  },
});
const LOGINS = Number(args.logins);
const CONCURRENCY = Number(args.concurrency);
const RETURN_TO = 'https://app.example.test/done';

const dir = mkdtempSync(join(tmpdir(), 'reference-rp-measure-'));
const children = [];
process.on('exit', () => {
  for (const c of children) c.kill();
  rmSync(dir, { recursive: true, force: true });
});

// ---- TLS for the IdP
const f = (n) => join(dir, n);
const ossl = (...a) => execFileSync('openssl', a, { stdio: ['ignore', 'ignore', 'ignore'] });
ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca-key.pem'), '-out', f('ca.pem'), '-days', '2',
  '-subj', '/CN=reference rp measure CA', '-addext', 'basicConstraints=critical,CA:TRUE',
  '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('key.pem'), '-out', f('csr.pem'), '-subj', '/CN=127.0.0.1');
writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
ossl('x509', '-req', '-in', f('csr.pem'), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial', '-days', '2',
  '-extfile', f('ext.cnf'), '-out', f('cert.pem'));
const CA = readFileSync(f('ca.pem'));

// spawn a server that prints {"port":N}; its stdin stays open (EOF stops it)
function start(cmd, argv, env) {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(c);
    const rl = createInterface({ input: c.stdout });
    rl.once('line', (l) => resolve({ pid: c.pid, port: JSON.parse(l).port }));
    c.once('exit', (code) => reject(new Error(`${argv[0]} exited with ${code} before its ready line`)));
  });
}

writeFileSync(f('idp.json'), JSON.stringify({ cert: f('cert.pem'), key: f('key.pem'), client_id: 'bench', client_secret: 'bench-secret' }));
const idp = await start('node', [join(ROOT, 'tests/idp/bad.mjs'), f('idp.json')]);
const issuer = `https://127.0.0.1:${idp.port}/${args.scenario}`;
writeFileSync(f('rp.json'), JSON.stringify({
  issuer, client_id: 'bench', client_secret: 'bench-secret', token_endpoint_auth_method: 'client_secret_basic',
  db: f('rp.sqlite'), ca_file: f('ca.pem'), allowed_return_urls: [RETURN_TO],
}));
const rp = await start('node', [...(process.env.RP_NODE_FLAGS ? process.env.RP_NODE_FLAGS.split(' ') : []), join(HERE, 'rp.mjs'), f('rp.json')], { NODE_EXTRA_CA_CERTS: f('ca.pem') });
const RP = `http://127.0.0.1:${rp.port}`;

// ---- one simulated browser per login: its own connections (keep-alive within the login)
function request(url, { agent, method = 'GET', headers = {}, body } = {}) {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(u, { method, agent, headers, ca: u.protocol === 'https:' ? CA : undefined }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function login(hint) {
  const rpAgent = new http.Agent({ keepAlive: true });
  const idpAgent = new https.Agent({ keepAlive: true, ca: CA });
  try {
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const s = new URL(`${RP}/start`);
    s.search = new URLSearchParams({ return_to: RETURN_TO, code_challenge: challenge, code_challenge_method: 'S256', login_hint: hint });
    const r1 = await request(s.href, { agent: rpAgent });
    if (r1.status !== 302) throw new Error(`start: ${r1.status} ${r1.body}`);
    const cookie = String(r1.headers['set-cookie']).split(';')[0];
    const r2 = await request(r1.headers.location, { agent: idpAgent });
    if (r2.status !== 302) throw new Error(`idp: ${r2.status} ${r2.body}`);
    const t = process.hrtime.bigint();
    const r3 = await request(r2.headers.location, { agent: rpAgent, headers: { cookie } });
    const callbackMs = Number(process.hrtime.bigint() - t) / 1e6;
    const code = r3.headers.location && new URL(r3.headers.location).searchParams.get('login_code');
    if (!code) throw new Error(`callback: ${r3.status} ${r3.headers.location ?? r3.body}`);
    const r4 = await request(`${RP}/sessions`, {
      agent: rpAgent, method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login_code: code, code_verifier: verifier }),
    });
    if (r4.status !== 200) throw new Error(`sessions: ${r4.status} ${r4.body}`);
    return callbackMs;
  } finally {
    rpAgent.destroy();
    idpAgent.destroy();
  }
}

// utime + stime of a process in seconds (clock ticks of 1/100 s on Linux)
function cpu(pid) {
  const after = readFileSync(`/proc/${pid}/stat`, 'utf8').split(')').pop().trim().split(/\s+/);
  return (Number(after[11]) + Number(after[12])) / 100;
}

async function phase(name) {
  const cpu0 = cpu(rp.pid);
  const t0 = process.hrtime.bigint();
  let next = 0;
  const lat = [];
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < LOGINS) {
      const i = next;
      next += 1;
      lat.push(await login(`user-${i}`));
    }
  }));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const used = cpu(rp.pid) - cpu0;
  lat.sort((a, b) => a - b);
  const pct = (p) => lat[Math.round((lat.length - 1) * p)];
  return { name, rate: LOGINS / wall, p50: pct(0.5), p99: pct(0.99), cpuMs: (used * 1000) / LOGINS };
}

for (let i = 0; i < 5; i += 1) await login(`warmup-${i}`);
console.log(`reference-rp measure: ${LOGINS} logins per phase, concurrency ${CONCURRENCY}, IdP scenario ${args.scenario}, RP pid ${rp.pid}`);
const rows = [await phase('first logins'), await phase('returning logins')];
console.log(`${'phase'.padEnd(18)} ${'logins/s'.padStart(10)} ${'callback p50'.padStart(14)} ${'callback p99'.padStart(14)} ${'CPU/login (rp)'.padStart(16)}`);
for (const r of rows) {
  console.log(`${r.name.padEnd(18)} ${r.rate.toFixed(1).padStart(10)} ${`${r.p50.toFixed(2)} ms`.padStart(14)} ${`${r.p99.toFixed(2)} ms`.padStart(14)} ${`${r.cpuMs.toFixed(3)} ms`.padStart(16)}`);
}
console.log('(CPU/login: utime+stime of the rp.mjs process over the phase, divided by logins; each login is start + callback + POST /sessions)');
process.exit(0);
