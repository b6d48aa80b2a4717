// Browser flows for keystead's tests, in Debian's chromium driven by
// playwright-core (no browser is ever downloaded). Reads one JSON job from
// stdin, prints one JSON result line to stdout; the Rust test that started
// it checks the result (signatures are verified outside the browser).
//
// job: { chromium, flow: "sdk" | "hosted", screenshots, login, ... }
import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';

const require = createRequire(import.meta.url);
const AXE = require.resolve('axe-core/axe.min.js');

const job = JSON.parse(await new Promise((ok) => {
  let s = ''; process.stdin.on('data', (d) => (s += d)); process.stdin.on('end', () => ok(s));
}));

const browser = await chromium.launch({
  executablePath: job.chromium,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--no-first-run'],
});
const out = { requests: [], console: [] };

// The test IdP's certificate comes from the suite's own CA.
async function newContext(extra = {}) {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, ...extra });
  ctx.on('request', (r) => out.requests.push(r.url()));
  return ctx;
}

/** axe-core in the page; serious and critical violations only. */
async function axe(page) {
  await page.addScriptTag({ path: AXE });
  const r = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ['violations'] }));
  return r.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')) }));
}

/** The test IdP's sign-in form: a user name, then "Sign in". */
async function idpLogin(page, login) {
  await page.waitForSelector('input[name=login]');
  await page.fill('input[name=login]', login);
  await page.click('button[value=login]');
}

async function shot(page, name) {
  if (!job.screenshots) return;
  mkdirSync(job.screenshots, { recursive: true });
  await page.screenshot({ path: `${job.screenshots}/${name}.png`, fullPage: true });
}

try {
  if (job.flow === 'sdk') {
    const page = await (await newContext()).newPage();
    page.on('console', (m) => out.console.push(m.text()));
    // a return this tab did not start is refused, whatever its code
    await page.goto(job.appUrl);
    await page.goto(`${job.appOrigin}/index.html?login_code=forged&state=forged`);
    await page.waitForFunction(() => document.getElementById('error').textContent.length > 0);
    out.unstartedError = await page.locator('#error').textContent();
    out.unstartedUrl = page.url();
    await page.goto(job.appUrl);
    const button = page.locator('#sign-in');
    await button.waitFor({ state: 'visible' });
    out.label = await button.textContent();
    await button.click();
    await idpLogin(page, job.login);
    await page.waitForURL((u) => u.href.startsWith(job.appOrigin), { timeout: 20000 });
    await page.locator('#signed-in').waitFor({ state: 'visible' });
    // the wallets arrive after the section shows
    await page.waitForFunction(() => document.getElementById('address').textContent.length > 0);
    out.address = await page.locator('#address').textContent();
    out.urlAfterLogin = page.url();
    out.message = await page.locator('#message').inputValue();
    await page.click('#sign');
    await page.waitForFunction(() => document.getElementById('signature').textContent.length > 0);
    out.signature = await page.locator('#signature').textContent();
    out.error = await page.locator('#error').textContent();
    out.sessionStorageKeys = await page.evaluate(() => Object.keys(sessionStorage));
  } else if (job.flow === 'hosted') {
    const ctx = await newContext({ bypassCSP: true });
    const page = await ctx.newPage();
    await page.goto(job.loginUrl);
    out.title = await page.title();
    out.csp = (await page.request.get(job.loginUrl)).headers()['content-security-policy'];
    out.violations = await axe(page);
    await shot(page, 'hosted-login-desktop');
    await page.setViewportSize({ width: 375, height: 740 });
    out.overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    await shot(page, 'hosted-login-375');
    // keyboard only: the first Tab reaches the sign-in button, Enter follows it
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.keyboard.press('Tab');
    out.focused = await page.evaluate(() => document.activeElement?.textContent ?? null);
    await page.keyboard.press('Enter');
    await idpLogin(page, job.login);
    await page.waitForURL((u) => u.href.startsWith(job.returnTo), { timeout: 20000 });
    out.returnedTo = page.url();
  } else if (job.flow === 'hosted-deny') {
    // the user says no at the IdP: back on the hosted page, in words
    const page = await (await newContext({ bypassCSP: true })).newPage();
    await page.goto(job.loginUrl);
    await page.getByRole('link', { name: job.label }).click();
    await page.waitForSelector('input[name=login]');
    await page.click('button[value=deny]');
    await page.getByRole('alert').waitFor();
    out.landedOn = page.url();
    out.alert = await page.getByRole('alert').textContent();
    out.violations = await axe(page);
    await page.getByRole('link', { name: 'Try again' }).click();
    await page.getByRole('link', { name: job.label }).waitFor();
    out.afterRetry = page.url();
    out.alertAfterRetry = await page.getByRole('alert').count();
  } else if (job.flow === 'portal') {
    const ctx = await newContext({ bypassCSP: true });
    const page = await ctx.newPage();
    const bodies = [];
    page.on('response', async (r) => {
      try { bodies.push(await r.text()); } catch { /* redirects have no body */ }
    });
    // sign in
    await page.goto(`${job.server}/portal`);
    await page.getByLabel('Email').fill(job.email);
    await page.getByLabel('Password').fill(job.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
    // an API key, shown once
    await page.getByLabel('New API key name').fill('web');
    await page.getByRole('button', { name: 'Create API key' }).click();
    out.secretKey = await page.locator('#secret-key').textContent();
    out.publishableKey = await page.locator('dd code').first().textContent();
    await page.getByRole('link', { name: /Authentication/ }).first().click();
    await page.getByRole('heading', { name: 'Custom OIDC' }).waitFor();
    out.authUrl = page.url();
    // a bad issuer: the API's message next to the field
    await page.getByLabel('Issuer URL').fill('http://idp.example.invalid');
    await page.getByLabel('Client ID').fill(job.clientId);
    await page.getByLabel('Sign-in label').fill(job.label);
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    out.issuerError = await page.locator('#issuer-error').textContent();
    out.keptClientId = await page.getByLabel('Client ID').inputValue();
    // the real IdP
    await page.getByLabel('Issuer URL').fill(job.issuer);
    await page.getByLabel('Token endpoint authentication').selectOption('client_secret_basic');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByRole('status').waitFor();
    await page.getByLabel('Client secret').fill(job.clientSecret);
    await page.getByRole('button', { name: 'Save secret' }).click();
    await page.getByRole('status').waitFor();
    out.secretState = await page.locator('#secret-state').textContent();
    out.secretFieldValue = await page.getByLabel('Client secret').inputValue();
    await page.getByLabel('Enabled').check();
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByRole('status').waitFor();
    await page.getByLabel('Allowed return URLs (one per line)').fill(job.returnUrls.join('\n'));
    await page.getByRole('button', { name: 'Save return URLs' }).click();
    await page.getByRole('status').waitFor();
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.locator('ul.checks li').first().waitFor();
    out.checks = await page.locator('ul.checks li').evaluateAll((lis) => lis.map((li) => ({
      status: li.className.replace('check-', ''), text: li.textContent,
    })));
    out.redirectUri = await page.locator('#redirect-uri').textContent();
    out.violations = await axe(page);
    await shot(page, 'portal-custom-oidc');
    out.secretInPage = (await page.content()).includes(job.clientSecret);
    out.secretInResponses = bodies.some((b) => b.includes(job.clientSecret));
    out.cookie = (await ctx.cookies()).find((c) => c.name.endsWith('ks_portal'));
    out.csrf = await page.locator('input[name=csrf]').first().inputValue();
    // Test sign-in: through the IdP's own form, to the result page
    await page.getByRole('button', { name: 'Test sign-in' }).click();
    await page.getByRole('link', { name: 'Sign in at your identity provider' }).click();
    await idpLogin(page, job.testLogin);
    await page.getByRole('heading', { name: /^Test sign-in: / }).waitFor();
    out.testResultHeading = await page.getByRole('heading', { name: /^Test sign-in: / }).textContent();
    out.testResultChecks = await page.locator('li').evaluateAll((lis) => lis.map((li) => li.textContent));
    out.testResultUrl = page.url();
    out.testResultViolations = await axe(page);
    await shot(page, 'test-login-result');
    // without JavaScript: sign in, open the screen, save
    const plain = await (await newContext({ javaScriptEnabled: false })).newPage();
    await plain.goto(`${job.server}/portal/login`);
    await plain.getByLabel('Email').fill(job.email);
    await plain.getByLabel('Password').fill(job.password);
    await plain.getByRole('button', { name: 'Sign in' }).click();
    await plain.goto(out.authUrl);
    await plain.getByLabel('Sign-in label').fill(`${job.label} (no JS)`);
    await plain.getByRole('button', { name: 'Save', exact: true }).click();
    out.noJsNotice = await plain.getByRole('status').textContent();
  } else {
    throw new Error(`unknown flow ${job.flow}`);
  }
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.failure = String(e?.stack ?? e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
