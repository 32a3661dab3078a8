// Browser test for WA Gateway: starts `wag serve` on a free port with a fresh SQLite data
// dir, then drives Debian's chromium (through playwright-core, which downloads no browser)
// through signup, API keys, instances and the sandbox QR flow, with JavaScript OFF: every
// page must work as plain HTML forms and links. A last step logs in again with JavaScript
// ON to show the optional script does not get in the way; with data on every page, it then
// checks that no portal or docs page is wider than a 390 px phone, and runs axe-core on each
// page (no serious or critical violations).
//
//   WAG_BIN=/path/to/wag npm test
//
// Optional: CHROMIUM_BIN (default /usr/bin/chromium), WAG_E2E_KEEP_DATA=1 keeps the data dir.
// Output: .tmp/wag.log (server log), screenshots/*.png (failure.png when a step fails).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TMP_DIR = path.join(HERE, '.tmp');
const LOG_PATH = path.join(TMP_DIR, 'wag.log');
const SHOTS_DIR = path.join(HERE, 'screenshots');
const CHROMIUM_BIN = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const TIMEOUT_MS = 10_000;
const HEALTH_TIMEOUT_MS = 60_000;

const EMAIL = `e2e-${Date.now()}@example.com`;
const PASSWORD = 'correct horse battery';

// ---------------------------------------------------------------------------------------
// Preconditions: fail at once, with a message that says what to do.

function die(message) {
  console.error(`\nend2end: ${message}\n`);
  process.exit(1);
}

if (!process.env.WAG_BIN) {
  die('WAG_BIN is not set. Build the server (`cargo build -p server`) and run e.g.\n' +
      '  WAG_BIN="${CARGO_TARGET_DIR:-../target}/debug/wag" npm test');
}
const WAG_BIN = path.resolve(process.env.WAG_BIN);
try {
  fs.accessSync(WAG_BIN, fs.constants.X_OK);
  if (!fs.statSync(WAG_BIN).isFile()) throw new Error('not a file');
} catch {
  die(`WAG_BIN=${process.env.WAG_BIN} (${WAG_BIN}) is missing or not an executable file. ` +
      'Build it with `cargo build -p server`.');
}
try {
  fs.accessSync(CHROMIUM_BIN, fs.constants.X_OK);
} catch {
  die(`${CHROMIUM_BIN} not found: install Debian's chromium (apt-get install -y chromium) ` +
      'or point CHROMIUM_BIN at a Chromium binary. Browsers are never downloaded by this test.');
}

// ---------------------------------------------------------------------------------------
// The server.

let server = null; // ChildProcess
let dataDir = null;
let baseUrl = null;
let anyFailure = false;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function logTail(lines = 50) {
  try {
    const text = fs.readFileSync(LOG_PATH, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n');
  } catch (e) {
    return `(no log at ${LOG_PATH}: ${e.message})`;
  }
}

function printLogTail() {
  console.error(`\n----- last 50 lines of ${path.relative(process.cwd(), LOG_PATH) || LOG_PATH} -----`);
  console.error(logTail(50));
  console.error('----- end of wag log -----\n');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** GET url → status code, on a connection of its own (no keep-alive socket left behind). */
function httpStatus(url, timeoutMs = 2_000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

async function startServer() {
  fs.mkdirSync(TMP_DIR, { recursive: true });
  const port = await freePort();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wag-e2e-'));
  baseUrl = `http://127.0.0.1:${port}`;

  const env = {
    ...process.env,
    WAG_LISTEN: `127.0.0.1:${port}`,
    WAG_DATA_DIR: dataDir,
    WAG_PUBLIC_BASE_URL: baseUrl,
    WAG_LOG_FORMAT: 'text',
    // The webhook tab gets a destination on this machine (one that refuses connections), so
    // its delivery log has rows to show.
    WAG_ALLOW_PRIVATE_WEBHOOK_TARGETS: 'true',
  };
  delete env.WAG_DATABASE_URL; // SQLite in the data dir

  const logFd = fs.openSync(LOG_PATH, 'w');
  fs.writeSync(logFd, `# ${new Date().toISOString()} ${WAG_BIN} serve on ${baseUrl}, data dir ${dataDir}\n`);
  server = spawn(WAG_BIN, ['serve'], { env, cwd: dataDir, stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd); // the child keeps its own copy
  let spawnError = null;
  server.on('error', (e) => { spawnError = e; });

  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (spawnError) throw new Error(`cannot start ${WAG_BIN}: ${spawnError.message}`);
    if (server.exitCode !== null || server.signalCode !== null) {
      throw new Error(`wag serve exited early (code ${server.exitCode}, signal ${server.signalCode})`);
    }
    try {
      const status = await httpStatus(`${baseUrl}/healthz`);
      if (status === 200) {
        console.log(`# wag is up at ${baseUrl} (data dir ${dataDir})`);
        return;
      }
      last = `HTTP ${status}`;
    } catch (e) {
      last = e.code || e.message;
    }
    await sleep(250);
  }
  throw new Error(`GET ${baseUrl}/healthz did not answer 200 within ${HEALTH_TIMEOUT_MS / 1000} s (last: ${last})`);
}

/** Runs `wag admin …` against the test server's database (as an operator would). */
function wagAdmin(args) {
  const env = { ...process.env, WAG_DATA_DIR: dataDir, WAG_LOG_FORMAT: 'text' };
  delete env.WAG_DATABASE_URL;
  return execFileSync(WAG_BIN, ['admin', ...args], { env, cwd: dataDir, encoding: 'utf8' });
}

async function stopServer() {
  if (!server || server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise((r) => server.once('exit', r));
  server.kill('SIGTERM');
  let timer;
  const gaveUp = new Promise((r) => { timer = setTimeout(() => r(true), 5_000); });
  const stuck = await Promise.race([exited.then(() => false), gaveUp]);
  clearTimeout(timer);
  if (stuck) {
    console.error('# wag did not stop within 5 s of SIGTERM; killing it');
    server.kill('SIGKILL');
    await exited;
  }
}

// Whatever happens (a crash, Ctrl-C), do not leave the server running.
process.on('exit', () => {
  if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(130));
}

// ---------------------------------------------------------------------------------------
// The browser.

let browser = null;
let currentPage = null; // the page a failure screenshot is taken of

async function launchBrowser() {
  browser = await chromium.launch({
    executablePath: CHROMIUM_BIN,
    headless: true,
    timeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  console.log(`# chromium ${browser.version()} (${CHROMIUM_BIN})`);
}

async function newContext({ javaScriptEnabled }) {
  const context = await browser.newContext({
    javaScriptEnabled,
    viewport: { width: 1280, height: 800 },
    baseURL: baseUrl,
  });
  context.setDefaultTimeout(TIMEOUT_MS);
  context.setDefaultNavigationTimeout(TIMEOUT_MS);
  return context;
}

/** Navigates and insists on HTTP 200; returns the response. */
async function open(page, url) {
  const res = await page.goto(url);
  assert.ok(res, `no response for ${url}`);
  assert.equal(res.status(), 200, `GET ${url} answered ${res.status()}`);
  return res;
}

/** Waits until the page's path (and optionally a query test) matches. */
async function waitForPath(page, pathTest, what) {
  try {
    await page.waitForURL((u) => (typeof pathTest === 'string' ? u.pathname === pathTest : pathTest.test(u.pathname + u.search)));
  } catch (e) {
    throw new Error(`expected to be at ${what ?? pathTest}, but the page is at ${page.url()}\n${e.message}`);
  }
}

async function failureReport(err, stepName) {
  anyFailure = true;
  console.error(`\n# step failed: ${stepName}: ${err?.message ?? err}`);
  if (currentPage && !currentPage.isClosed()) {
    try {
      fs.mkdirSync(SHOTS_DIR, { recursive: true });
      const shot = path.join(SHOTS_DIR, 'failure.png');
      await currentPage.screenshot({ path: shot, fullPage: true, timeout: 5_000 });
      console.error(`# page was at ${currentPage.url()}; screenshot: ${path.relative(process.cwd(), shot)}`);
    } catch (e) {
      console.error(`# could not take a failure screenshot: ${e.message}`);
    }
  }
  printLogTail();
}

// ---------------------------------------------------------------------------------------
// Set-up and tear-down.

before(async () => {
  try {
    await startServer();
  } catch (e) {
    anyFailure = true;
    printLogTail();
    throw e;
  }
  await launchBrowser();
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  await stopServer();
  if (dataDir) {
    if (anyFailure || process.env.WAG_E2E_KEEP_DATA) {
      console.log(`# kept data dir ${dataDir}`);
    } else {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }
});

// ---------------------------------------------------------------------------------------
// The test: one user's journey, step by step. A failed step skips the ones after it.

test('WA Gateway works in a browser without JavaScript', { timeout: 10 * 60_000 }, async (t) => {
  let failed = null;
  const step = (name, fn) =>
    t.test(name, { skip: failed ? `an earlier step failed (${failed})` : false }, async () => {
      try {
        await fn();
      } catch (e) {
        failed = name.split(' ')[0];
        await failureReport(e, name);
        throw e;
      }
    });

  const context = await newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  currentPage = page;

  let apiKey = null;
  let manageUrl = null;

  await step('a. the home page answers and names the product', async () => {
    const res = await open(page, '/');
    const html = await res.text();
    assert.ok(html.includes('WA Gateway'), 'the home page does not contain "WA Gateway"');
  });

  await step('b. signup creates an account and lands on the dashboard', async () => {
    await open(page, '/signup');
    await page.getByLabel('Email', { exact: true }).fill(EMAIL);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account', exact: true }).click();
    await waitForPath(page, '/dashboard');
    await page.getByRole('heading', { level: 1, name: 'Dashboard', exact: true }).waitFor();
  });

  await step('c. an API key is shown once, then only its prefix', async () => {
    await open(page, '/api-keys');
    await page.getByLabel('Key name', { exact: true }).fill('ERP');
    await page.getByRole('button', { name: 'Create API key', exact: true }).click();
    await page.getByText('Copy this key now').first().waitFor();
    const keyInput = page.locator('input#new-api-key');
    await keyInput.waitFor();
    apiKey = await keyInput.inputValue();
    assert.ok(apiKey.startsWith('wag_'), `the new key should start with "wag_", got ${JSON.stringify(apiKey)}`);
    assert.ok(apiKey.length > 12, `the new key is suspiciously short: ${JSON.stringify(apiKey)}`);

    const res = await open(page, '/api-keys');
    const rawHtml = await res.text();
    const domHtml = await page.content();
    assert.ok(!rawHtml.includes(apiKey), 'the full API key is still in the /api-keys HTML after a reload');
    assert.ok(!domHtml.includes(apiKey), 'the full API key is still in the /api-keys page after a reload');
    const prefix = apiKey.slice(0, 12);
    const table = page.locator('table', { hasText: 'ERP' }).first();
    await table.waitFor();
    const tableText = await table.innerText();
    assert.ok(tableText.includes('ERP'), 'the API key table does not list "ERP"');
    assert.ok(tableText.includes(prefix), `the API key table does not show the key prefix ${prefix}`);
  });

  await step('c2. with one key, the Revoke confirmation opens inside its table, not clipped', async () => {
    await open(page, '/api-keys');
    await page.locator('summary', { hasText: 'Revoke' }).first().click();
    const yes = page.getByRole('button', { name: 'Yes, revoke this key', exact: true });
    await yes.waitFor();
    const boxes = await yes.evaluate((button) => {
      const wrap = button.closest('.table-wrap').getBoundingClientRect();
      const b = button.getBoundingClientRect();
      return { wrap: [wrap.left, wrap.top, wrap.right, wrap.bottom], button: [b.left, b.top, b.right, b.bottom] };
    });
    const [wl, wt, wr, wb] = boxes.wrap;
    const [bl, bt, br, bb] = boxes.button;
    assert.ok(bl >= wl && bt >= wt && br <= wr && bb <= wb, `the confirm button is clipped: ${JSON.stringify(boxes)}`);
    await open(page, '/api-keys'); // closes it again, nothing revoked
  });

  await step('d. a new instance lands on its Connect tab, which says no phone is needed', async () => {
    await open(page, '/instances');
    await page.getByLabel('Instance name', { exact: true }).fill('Support line');
    await page.getByRole('button', { name: 'Create instance', exact: true }).click();
    await waitForPath(page, /^\/instances\/inst_[^/?]+\/manage\?tab=connect$/, '/instances/inst_…/manage?tab=connect');
    manageUrl = page.url();
    await page.getByText('Not linked', { exact: true }).first().waitFor();
    await page.getByText('No phone is needed.').first().waitFor();
    await open(page, '/instances');
    await page.locator('table').getByRole('row', { name: /Support line/ }).first().waitFor();
    await open(page, manageUrl);
  });

  await step('e. the Connect tab shows a QR code and "Simulate scan" connects', async () => {
    const tab = page
      .getByRole('link', { name: 'Connect', exact: true })
      .or(page.getByRole('tab', { name: 'Connect', exact: true }))
      .first();
    await tab.click();
    await page.waitForURL((u) => u.searchParams.get('tab') === 'connect').catch((e) => {
      throw new Error(`the Connect tab did not lead to ?tab=connect (at ${page.url()})\n${e.message}`);
    });
    await page.locator('div.qr svg').first().waitFor();
    await page.getByRole('button', { name: 'Simulate scan', exact: true }).click();
    const badge = page.locator('span.badge-connected').first();
    await badge.waitFor();
    assert.match(await badge.innerText(), /Connected/, 'the status badge does not say "Connected"');
  });

  await step('e1. the Webhook tab offers all 16 events, the four recommended ones ticked', async () => {
    await open(page, manageUrl.replace(/\?.*$/, '') + '?tab=webhook');
    await page.getByLabel('Destination URL').waitFor();
    assert.equal(await page.locator('input[type=checkbox][name^="events"]').count(), 16);
    assert.equal(await page.locator('input[type=checkbox][name^="events"]:checked').count(), 4);
    await open(page, '/messages');
    await page.getByRole('heading', { level: 1, name: 'Messages', exact: true }).waitFor();
    await open(page, '/inbound-logs');
    await page.getByRole('heading', { level: 1, name: 'Inbound logs', exact: true }).waitFor();
  });

  await step('e2. a number is blocked on the suppression list', async () => {
    await open(page, '/suppressed-recipients');
    await page.getByLabel('Phone number').fill('+966501112233');
    await page.getByRole('button', { name: 'Block number', exact: true }).click();
    await waitForPath(page, '/suppressed-recipients');
    await page.locator('td', { hasText: '+966501112233' }).first().waitFor();
    await open(page, '/responsible-messaging');
    await page.getByRole('heading', { level: 1, name: 'Responsible messaging', exact: true }).waitFor();
  });

  await step('e3. a 3CX integration is created, its secret shown once, and a test event logged', async () => {
    wagAdmin(['set-module', '--email', EMAIL, '--module', '3cx', '--enabled', 'true']);
    await open(page, '/integrations/3cx');
    await page.getByRole('heading', { level: 1, name: '3CX Integration', exact: true }).waitFor();
    await page.getByLabel('Business name', { exact: true }).fill('Support Desk');
    await page.getByRole('button', { name: 'Create integration', exact: true }).click();
    await page.getByText('Copy its webhook secret into 3CX now').first().waitFor();
    const secret = await page.locator('input#new-3cx-secret').inputValue();
    assert.ok(secret.startsWith('tcxs_'), `the webhook secret should start with "tcxs_", got ${JSON.stringify(secret)}`);
    const hookUrl = await page.locator('input[id^="tcx-url-"]').first().inputValue();
    assert.ok(hookUrl.startsWith(`${baseUrl}/integrations/3cx/webhook/tcx_`), `unexpected webhook URL ${hookUrl}`);
    const res = await fetch(hookUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-WhatsApp-Gateway-3CX-Secret': secret },
      body: JSON.stringify({ event_type: 'test' }),
    });
    assert.equal(res.status, 200, `the test event answered ${res.status}`);
    // The request log is written just after the answer: reload until it shows.
    let logged = false;
    for (let i = 0; i < 10 && !logged; i++) {
      const reloaded = await open(page, '/integrations/3cx?tab=log');
      assert.ok(!(await reloaded.text()).includes(secret), 'the webhook secret is still on the page after a reload');
      logged = (await page.locator('td', { hasText: 'test' }).count()) > 0;
      if (!logged) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(logged, 'the request log does not list the test event');
    await page.getByRole('link', { name: 'Templates', exact: true }).click();
    await page.getByLabel('Missed call (missed_call)').waitFor();
    fs.mkdirSync(SHOTS_DIR, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS_DIR, 'integrations-3cx.png'), fullPage: true });
  });

  await step('f. dashboard screenshots, desktop and phone', async () => {
    fs.mkdirSync(SHOTS_DIR, { recursive: true });
    await open(page, '/dashboard');
    await page.getByRole('heading', { level: 1, name: 'Dashboard', exact: true }).waitFor();
    await page.screenshot({ path: path.join(SHOTS_DIR, 'dashboard.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await open(page, '/dashboard');
    await page.screenshot({ path: path.join(SHOTS_DIR, 'dashboard-mobile.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
    console.log(`# screenshots in ${path.relative(process.cwd(), SHOTS_DIR) || SHOTS_DIR}/ (manage page was ${manageUrl})`);
  });

  await context.close();

  // A context of its own; closed after the step so a failure screenshot can still be taken.
  let jsContext = null;
  let dataContext = null;
  let dataPage = null;
  await step('g. with JavaScript on, login reaches the dashboard too', async () => {
    jsContext = await newContext({ javaScriptEnabled: true });
    const jsPage = await jsContext.newPage();
    currentPage = jsPage;
    const pageErrors = [];
    jsPage.on('pageerror', (e) => pageErrors.push(e.message));
    // The portal's Content-Security-Policy must not block anything the pages themselves use.
    const blocked = [];
    jsPage.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) blocked.push(m.text());
    });
    await open(jsPage, '/login');
    await jsPage.getByLabel('Email', { exact: true }).fill(EMAIL);
    await jsPage.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await jsPage.getByRole('button', { name: 'Log in', exact: true }).click();
    await waitForPath(jsPage, '/dashboard');
    await jsPage.getByRole('heading', { level: 1, name: 'Dashboard', exact: true }).waitFor();
    for (const path of ['/api-keys', '/instances', '/docs']) await open(jsPage, path);
    assert.deepEqual(pageErrors, [], `uncaught script errors on the page: ${pageErrors.join(' | ')}`);
    assert.deepEqual(blocked, [], `the Content-Security-Policy blocked: ${blocked.join(' | ')}`);
  });
  if (jsContext) await jsContext.close();

  // Data on every page, so tables and logs are measured with rows in them.
  await step('h. data for the pages: messages, a blocked attempt, an inbound message, a webhook', async () => {
    const instanceId = new URL(manageUrl).pathname.split('/')[2];
    const api = async (path, body) => {
      const res = await fetch(`${baseUrl}${path}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${apiKey}` },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    };
    const sent = await api('/api/send-message', {
      instance_id: instanceId,
      phone: '+966501234567',
      message: 'Your order #2041 has been shipped and will arrive on Thursday between 9:00 and 17:00.',
      message_purpose: 'transactional',
    });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    const blocked = await api('/api/send-message', {
      instance_id: instanceId,
      phone: '+966501234568',
      message: 'MEGA SALE!!! 70% off everything, buy now with promo code SAVE70 at bit.ly/deal',
      message_purpose: 'transactional',
    });
    assert.equal(blocked.body.error, 'policy_violation', JSON.stringify(blocked.body));
    const inbound = await api('/api/sandbox/inbound', {
      instance_id: instanceId,
      from: '+966501234569',
      message: 'Where is my order #2041? It was due yesterday_and_I_have_been_waiting_all_day_long.',
    });
    assert.equal(inbound.status, 200, JSON.stringify(inbound.body));
    dataContext = await newContext({ javaScriptEnabled: true });
    const p = await dataContext.newPage();
    currentPage = p;
    await open(p, '/login');
    await p.getByLabel('Email', { exact: true }).fill(EMAIL);
    await p.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await p.getByRole('button', { name: 'Log in', exact: true }).click();
    await waitForPath(p, '/dashboard');
    await open(p, `/instances/${instanceId}/manage?tab=webhook`);
    await p.getByLabel('Destination URL').fill('http://127.0.0.1:9/hooks/whatsapp-gateway-events');
    await p.getByRole('button', { name: 'Add destination', exact: true }).click();
    await p.locator('input#new-webhook-secret').waitFor();
    await p.getByRole('button', { name: 'Send test event', exact: true }).click();
    await p.getByText('Test event queued').first().waitFor();
    dataPage = p;
  });

  await step('h2. on a long page the sidebar reaches the bottom and its panel stays in view', async () => {
    const p = dataPage;
    await open(p, '/docs/receive');
    const seen = await p.evaluate(() => {
      window.scrollTo(0, document.documentElement.scrollHeight);
      const aside = document.querySelector('aside.sidebar').getBoundingClientRect();
      const link = document.querySelector('a.nav-link').getBoundingClientRect();
      return { asideBottom: aside.bottom, linkTop: link.top, viewport: window.innerHeight, scrolled: window.scrollY };
    });
    assert.ok(seen.scrolled > 2000, `the page is long (${seen.scrolled}px scrolled)`);
    assert.ok(seen.asideBottom >= seen.viewport - 1, `the sidebar ends part-way down: ${JSON.stringify(seen)}`);
    assert.ok(seen.linkTop >= 0 && seen.linkTop < seen.viewport, `the navigation scrolled away: ${JSON.stringify(seen)}`);
    // On a wide screen the navigation is simply open: no Menu button.
    assert.ok(await p.getByText('Menu', { exact: true }).isHidden(), 'the phone menu button shows on a wide screen');
    assert.ok(await p.getByRole('link', { name: 'Account', exact: true }).isVisible(), 'the whole navigation is there');
  });

  await step('h3. keyboard: a skip link comes first; field edges and the focus ring reach 3:1', async () => {
    const p = dataPage;
    await open(p, '/api-keys');
    await p.keyboard.press('Tab');
    const first = await p.evaluate(() => ({ text: document.activeElement.textContent, href: document.activeElement.getAttribute('href') }));
    assert.deepEqual(first, { text: 'Skip to content', href: '#main' });
    await p.locator('#key-name').focus();
    const colours = await p.locator('#key-name').evaluate((input) => {
      const s = getComputedStyle(input);
      return { border: s.borderTopColor, ring: s.boxShadow, background: getComputedStyle(document.body).backgroundColor };
    });
    const rgb = (text) => (text.match(/rgba?\(([^)]+)\)/g) || []).map((c) => c.match(/[\d.]+/g).slice(0, 3).map(Number));
    const lum = ([r, g, b]) => {
      const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((m, n) => n - m); return (x + 0.05) / (y + 0.05); };
    const white = [255, 255, 255];
    const border = ratio(rgb(colours.border)[0], white);
    assert.ok(border >= 3, `input border contrast ${border.toFixed(2)}:1 (${colours.border})`);
    const ring = Math.max(...rgb(colours.ring).map((c) => ratio(c, white)));
    assert.ok(ring >= 3, `focus ring contrast ${ring.toFixed(2)}:1 (${colours.ring})`);
  });

  await step('i. no page is wider than a 390 px phone', async () => {
    const p = dataPage;
    await p.setViewportSize({ width: 390, height: 844 });
    const wide = [];
    for (const path of await portalPages(p)) {
      await open(p, path);
      const width = await p.evaluate(() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth));
      if (width > 390) wide.push(`${path}: ${width}px`);
    }
    fs.mkdirSync(SHOTS_DIR, { recursive: true });
    await open(p, '/api-keys');
    await p.screenshot({ path: path.join(SHOTS_DIR, 'api-keys-mobile.png'), fullPage: true });
    // The menu opens without script: the checkbox behind the Menu button.
    await p.getByText('Menu', { exact: true }).click();
    await p.getByRole('link', { name: 'Inbound Logs', exact: true }).waitFor();
    await p.screenshot({ path: path.join(SHOTS_DIR, 'menu-mobile.png'), fullPage: true });
    await p.setViewportSize({ width: 1280, height: 800 });
    assert.deepEqual(wide, [], `pages wider than the phone: ${wide.join(', ')}`);
  });

  await step('j. axe-core finds no serious or critical problem on any page', async () => {
    const p = dataPage;
    const problems = [];
    const check = async (page, path) => {
      await open(page, path);
      await page.evaluate(AXE_SOURCE);
      const result = await page.evaluate(() =>
        window.axe.run(document, { resultTypes: ['violations'] }).then((r) =>
          r.violations
            .filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`)));
      for (const v of result) problems.push(`${path}: ${v}`);
    };
    for (const path of await portalPages(p)) await check(p, path);
    // The public pages, signed out.
    const outContext = await newContext({ javaScriptEnabled: true });
    const out = await outContext.newPage();
    for (const path of ['/', '/login', '/signup', '/docs', '/docs/send']) await check(out, path);
    await outContext.close();
    assert.deepEqual(problems, [], `accessibility problems:\n${problems.join('\n')}`);
  });

  await step('k. operator pass: a customer asks for a higher limit, an operator approves it, the customer sees it', async () => {
    const page = dataPage; // the customer, signed in
    currentPage = page;
    await open(page, '/dashboard');
    await page.getByText('Request a higher reviewed limit', { exact: true }).click();
    await page.getByLabel('Daily limit you need', { exact: true }).fill('2000');
    await page.getByLabel('Monthly limit you need', { exact: true }).fill('40000');
    await page.getByLabel('Use case', { exact: true }).fill('Order and delivery updates to our shop\'s buyers');
    await page.getByLabel('Expected volume', { exact: true }).fill('about 1,500 updates a day');
    await page.getByRole('button', { name: 'Send the request', exact: true }).click();
    await waitForPath(page, '/dashboard');
    await page.getByText('is waiting for an operator').first().waitFor();

    const operatorEmail = `e2e-operator-${Date.now()}@example.com`;
    wagAdmin(['create-user', '--email', operatorEmail, '--password', PASSWORD, '--admin']);
    // JavaScript on: axe-core runs in the page below.
    const opContext = await newContext({ javaScriptEnabled: true });
    const op = await opContext.newPage();
    currentPage = op;
    await open(op, '/login');
    await op.getByLabel('Email', { exact: true }).fill(operatorEmail);
    await op.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await op.getByRole('button', { name: 'Log in', exact: true }).click();
    await waitForPath(op, '/dashboard');
    await op.getByRole('link', { name: 'Limit requests', exact: true }).click();
    await waitForPath(op, '/admin/limit-requests');
    await op.getByText('about 1,500 updates a day').first().waitFor();
    await op.getByLabel('Daily limit', { exact: true }).fill('1500');
    await op.getByLabel('Monthly limit', { exact: true }).fill('30000');
    await op.getByRole('button', { name: 'Approve', exact: true }).click();
    await op.getByText('limits are now 1500 a day and 30000 a month').first().waitFor();
    await op.screenshot({ path: path.join(SHOTS_DIR, 'operator-limit-requests.png'), fullPage: true });

    // The operator's pages pass axe-core too.
    const problems = [];
    for (const adminPath of ['/admin', '/admin/accounts', '/admin/reviews', '/admin/limit-requests?status=approved', '/admin/instances', '/admin/audit']) {
      await open(op, adminPath);
      await op.evaluate(AXE_SOURCE);
      const result = await op.evaluate(() =>
        window.axe.run(document, { resultTypes: ['violations'] }).then((r) =>
          r.violations
            .filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`)));
      for (const v of result) problems.push(`${adminPath}: ${v}`);
    }
    await open(op, '/admin/accounts');
    await op.getByRole('link', { name: EMAIL, exact: true }).click();
    await op.getByText('decide_limit_request').first().waitFor();
    await opContext.close();
    assert.deepEqual(problems, [], `accessibility problems on operator pages:\n${problems.join('\n')}`);

    currentPage = page;
    await open(page, '/dashboard');
    await page.getByText('your limits are now 1500 a day and 30000 a month').first().waitFor();
    const usage = await page.locator('.stat-value').allTextContents();
    assert.ok(usage.some((t) => / \/ 1500$/.test(t.trim())), `the daily meter counts against 1500: ${usage.join(' | ')}`);
  });
  if (dataContext) await dataContext.close();
});

/** Every portal and docs page of the signed-in user, with the instance's tabs. */
async function portalPages(page) {
  await open(page, '/instances');
  const manage = await page.locator('a[href^="/instances/inst_"]').first().getAttribute('href');
  await open(page, '/docs');
  const docLinks = await page.locator('nav.docs-nav a').evaluateAll((links) => links.map((a) => a.getAttribute('href')));
  return [
    '/dashboard',
    '/api-keys',
    '/instances',
    `${manage}?tab=overview`,
    `${manage}?tab=connect`,
    `${manage}?tab=webhook`,
    `${manage}?tab=settings`,
    '/messages',
    '/inbound-logs',
    '/suppressed-recipients',
    '/responsible-messaging',
    '/integrations/3cx',
    '/account',
    ...docLinks,
  ];
}
