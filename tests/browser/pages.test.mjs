// The person's page and the consulate console in headless Chromium, against a real runner with
// its own data directory. Screenshots land in tests/browser/artefacts/ (not committed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const binary = process.env.ALERT_BUTTON_BIN || join(root, 'target', 'debug', 'alert-button');
const artefacts = join(here, 'artefacts');
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const CHICAGO = { latitude: 41.8781, longitude: -87.6298 };

let runner, base, dataDir, browser;

before(async () => {
  mkdirSync(artefacts, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), 'alert-button-browser-'));
  runner = spawn(binary, ['serve', '--addr', '127.0.0.1:0', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: 'warn' } });
  base = await new Promise((resolve, reject) => {
    let seen = '';
    runner.stdout.on('data', (chunk) => {
      seen += chunk;
      const m = seen.match(/listening on (http:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    runner.on('exit', (code) => reject(new Error(`the runner exited with ${code}`)));
    setTimeout(() => reject(new Error('the runner did not start')), 30000);
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-sync', '--disable-quic'],
  });
});

after(async () => {
  await browser?.close();
  runner?.kill();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

function staffToken(consulate) {
  return execFileSync(binary, ['staff-token', '--consulate', consulate, '--data-dir', dataDir], { encoding: 'utf8' }).trim();
}

async function phone({ geolocation = CHICAGO } = {}) {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
    locale: 'es-MX',
    ...(geolocation ? { geolocation, permissions: ['geolocation'] } : { permissions: [] }),
  });
  const page = await context.newPage();
  await page.goto(base + '/');
  return { context, page };
}

async function register(page, name, contactPhone = '+13125550100') {
  await page.locator('#register').waitFor();
  await page.fill('#display-name', name);
  await page.fill('#contacts-0-name', 'Luis');
  await page.fill('#contacts-0-phone', contactPhone);
  await page.fill('#cancel-pin', '2468');
  await page.fill('#duress-pin', '1357');
  await page.click('#register-submit');
  await page.locator('#home').waitFor();
}

/** Waits until the page has the phone's location. */
async function located(page) {
  await page.locator('#where').filter({ hasText: 'Ubicación lista' }).waitFor();
}

/** A phone on which `name` registered (one contact, texted at `contactPhone`), location ready. */
async function registeredPhone(name, contactPhone) {
  const { context, page } = await phone();
  await register(page, name, contactPhone);
  await located(page);
  return { context, page };
}

/** A registered phone whose button was held until its alert showed; with the alert's id. */
async function pressedPhone(name, contactPhone) {
  const { context, page } = await registeredPhone(name, contactPhone);
  await hold(page);
  await page.locator('#alert').waitFor();
  return { context, page, alertId: await alertIdOf(page) };
}

/** Holds the button with the mouse for `ms`, and says whether the countdown showed meanwhile. */
async function hold(page, ms = 3000, screenshot = null) {
  await page.locator('#press').hover();
  await page.mouse.down();
  await page.waitForTimeout(600);
  const countdown = await page.textContent('#countdown');
  if (screenshot) await page.screenshot({ path: join(artefacts, screenshot) });
  await page.waitForTimeout(ms - 600);
  await page.mouse.up();
  return countdown;
}

async function checkAccessibility(page, what) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(' ')}`), [], `${what}: accessibility`);
}

async function console_(consulate = 'mx-cg-chicago') {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  await page.goto(base + '/console');
  await page.fill('#token', staffToken(consulate));
  await page.click('#token-submit');
  await page.locator('#list').waitFor();
  return { context, page };
}

async function alertIdOf(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem('ab.alert')).alert_id);
}

async function openInConsole(staff, alertId, status = 'open') {
  await staff.selectOption('#status-filter', status);
  const row = staff.locator(`[data-alert-id="${alertId}"]`);
  await row.waitFor({ timeout: 15000 });
  await row.click();
  try {
    await staff.locator('#detail').waitFor();
  } catch (error) {
    // Say what the console showed instead, so that a failure here names its cause.
    const showing = await staff.evaluate(() => ['sign-in', 'list', 'detail'].filter((id) => !document.getElementById(id).hidden));
    const notice = await staff.textContent('#notice');
    await staff.screenshot({ path: join(artefacts, 'console-detail-missing.png'), fullPage: true });
    throw new Error(`the alert's detail did not open: showing ${showing.join(', ') || 'nothing'}, notice "${notice}"`, { cause: error });
  }
  await staff.waitForFunction(() => document.getElementById('d-status').textContent !== '');
}

test('register, hold, see the consulate, acknowledged by the console, cancelled with the PIN', async () => {
  const { context, page } = await phone();
  assert.equal(await page.getAttribute('html', 'lang'), 'es');
  await checkAccessibility(page, 'registration');
  await page.screenshot({ path: join(artefacts, 'person-register.png'), fullPage: true });
  await register(page, 'Ana Browser');
  await located(page);
  await checkAccessibility(page, 'the button');
  await page.screenshot({ path: join(artefacts, 'person-button.png'), fullPage: true });

  // Let go early: nothing is sent.
  await hold(page, 900);
  await page.locator('#notice').filter({ hasText: 'no se envió nada' }).waitFor();
  assert.equal(await page.isVisible('#home'), true);
  assert.equal(await page.evaluate(() => localStorage.getItem('ab.pending')), null);

  const countdown = await hold(page, 3000, 'person-holding.png');
  assert.match(countdown, /^[12]$/);
  await page.locator('#alert').waitFor();
  assert.match(await page.textContent('#consulate-name'), /Chicago/);
  assert.match(await page.getAttribute('#consulate-phone', 'href'), /^tel:\+1\d{10}$/);
  assert.match(await page.textContent('#consulate-distance'), /km/);
  assert.match(await page.textContent('#alert-status'), /esperando/);
  // Who was told, the consulate first, and the family's text once its receipt is in.
  await page.locator('#deliveries li[data-status="delivered"]').filter({ hasText: 'Familia' }).waitFor({ timeout: 20000 });
  const told = await page.locator('#deliveries li').allTextContents();
  assert.match(told[0], /^Consulado/);
  assert.ok(told.some((line) => /^Familia \+1 ••• ••• 0100: recibido$/.test(line)), told.join(' | '));
  await checkAccessibility(page, 'the alert');
  await page.screenshot({ path: join(artefacts, 'person-alert.png'), fullPage: true });

  // English on demand.
  await page.click('#lang');
  assert.equal(await page.textContent('#alert-title'), 'Alert sent');

  const alertId = await alertIdOf(page);
  const staff = await console_();
  await checkAccessibility(staff.page, 'the console list');
  await staff.page.screenshot({ path: join(artefacts, 'console-list.png'), fullPage: true });
  await openInConsole(staff.page, alertId);
  assert.notEqual(await staff.page.getAttribute('#point', 'cx'), null);
  await staff.page.locator('#deliveries-rows tr[data-status="delivered"]').first().waitFor();
  assert.ok(await staff.page.locator('#deliveries-rows tr').count() >= 2);
  await staff.page.fill('#ack-note', 'Un abogado va en camino');
  await staff.page.click('#acknowledge');
  await staff.page.locator('#d-status').filter({ hasText: 'acknowledged' }).waitFor();
  await checkAccessibility(staff.page, 'the console detail');
  await staff.page.screenshot({ path: join(artefacts, 'console-alert.png'), fullPage: true });

  await page.locator('#ack').filter({ hasText: 'Un abogado va en camino' }).waitFor({ timeout: 15000 });
  assert.match(await page.textContent('#alert-status'), /consulate has it/);

  // A wrong PIN does nothing; the cancel PIN closes it.
  await page.fill('#safe-pin', '0000');
  await page.click('#safe');
  await page.locator('#notice').filter({ hasText: 'Wrong PIN' }).waitFor();
  assert.equal(await page.isVisible('#alert'), true);
  await page.fill('#safe-pin', '2468');
  await page.click('#safe');
  await page.locator('#closed').waitFor();
  await staff.page.locator('#d-status').filter({ hasText: 'cancelled' }).waitFor({ timeout: 15000 });
  await staff.context.close();
  await context.close();
});

test('a text that did not reach the family is shown as not arrived, on the page and the console', async () => {
  // The local journal's carrier reports a text to a number ending in 5550198 as undeliverable.
  const { context, page, alertId } = await pressedPhone('Eva Browser', '+13125550198');
  const failed = page.locator('#deliveries li[data-status="failed"]');
  await failed.waitFor({ timeout: 20000 });
  assert.match(await failed.textContent(), /^Familia \+1 ••• ••• 0198: no llegó$/);
  const staff = await console_();
  await openInConsole(staff.page, alertId);
  await staff.page.locator('#deliveries-rows tr[data-status="failed"]').waitFor({ timeout: 15000 });
  await staff.context.close();
  await context.close();
});

test('the duress PIN looks cancelled on the page and stays open, marked, on the console', async () => {
  const { context, page, alertId } = await pressedPhone('Bea Duress');
  await page.fill('#safe-pin', '1357');
  await page.click('#safe');
  await page.locator('#closed').waitFor();
  assert.equal(await page.textContent('#closed-title'), 'Alerta cancelada');

  const staff = await console_();
  await openInConsole(staff.page, alertId, 'open');
  assert.equal(await staff.page.textContent('#d-status'), 'open');
  assert.equal(await staff.page.isVisible('#d-duress'), true);
  await staff.context.close();
  await context.close();
});

test('a press made offline is queued and sent once when the network returns', async () => {
  const { context, page } = await registeredPhone('Carla Offline');
  await context.setOffline(true);
  await hold(page);
  await page.locator('#queued').waitFor();
  const pending = await page.evaluate(() => JSON.parse(localStorage.getItem('ab.pending')));
  assert.match(pending.client_alert_id, /^web-/);
  await page.waitForTimeout(1000);
  assert.equal(await page.isVisible('#alert'), false);
  await context.setOffline(false);
  await page.locator('#alert').waitFor({ timeout: 20000 });
  assert.equal(await page.evaluate(() => JSON.parse(localStorage.getItem('ab.alert')).client_alert_id), pending.client_alert_id);
  await page.waitForTimeout(6000); // time for any stray retry

  const staff = await console_();
  await staff.page.locator('#alerts tr').first().waitFor();
  const rows = await staff.page.locator('#alerts tr', { hasText: 'Carla Offline' }).count();
  assert.equal(rows, 1);
  await staff.context.close();
  await context.close();
});

test('keyboard only: the space bar held for two seconds raises the alert', async () => {
  const { context, page } = await registeredPhone('Dora Keys');
  await page.focus('#lang');
  let focused = '';
  for (let i = 0; i < 10 && focused !== 'press'; i += 1) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() => document.activeElement.id);
  }
  assert.equal(focused, 'press');
  await page.keyboard.down(' ');
  await page.waitForTimeout(3000);
  await page.keyboard.up(' ');
  await page.locator('#alert').waitFor();
  assert.match(await page.textContent('#consulate-name'), /Chicago/);
  await context.close();
});

test('without the browser location, a state picked by hand is sent as a coarse point', async () => {
  const { context, page } = await phone({ geolocation: null });
  await register(page, 'Eva State');
  await page.locator('#fallback').waitFor();
  await checkAccessibility(page, 'the state fallback');
  await page.selectOption('#state', 'IL');
  await hold(page);
  await page.locator('#alert').waitFor();
  const alert = await page.evaluate(() => JSON.parse(localStorage.getItem('ab.alert')));
  assert.equal(alert.location.accuracy_m, 100000);
  assert.equal(alert.consulate.id, 'mx-cg-chicago');
  await context.close();
});

test('a press whose answer is lost is retried with the same id and makes one alert', async () => {
  const { context, page } = await registeredPhone('Fina Retry');
  let attempts = 0;
  const ids = new Set();
  await page.route('**/v1/alerts', async (route) => {
    attempts += 1;
    ids.add(JSON.parse(route.request().postData()).client_alert_id);
    const response = await route.fetch(); // the server stores the alert...
    if (attempts === 1) await route.abort('connectionreset'); // ...but the answer never arrives
    else await route.fulfill({ response });
  });
  await hold(page);
  await page.locator('#queued').waitFor();
  await page.locator('#alert').waitFor({ timeout: 20000 });
  assert.equal(attempts, 2);
  assert.equal(ids.size, 1);

  const staff = await console_();
  await staff.page.locator('#alerts tr').first().waitFor();
  assert.equal(await staff.page.locator('#alerts tr', { hasText: 'Fina Retry' }).count(), 1);
  await staff.context.close();
  await context.close();
});

test('while open, the page sends a move once and holds back the next for a while', async () => {
  const { context, page, alertId } = await pressedPhone('Gala Moves');
  const token = await page.evaluate(() => JSON.parse(localStorage.getItem('ab.token')));
  const updates = async () => {
    const response = await fetch(`${base}/v1/alerts/${alertId}`, { headers: { authorization: 'Bearer ' + token } });
    const alert = await response.json();
    return alert.history.filter((h) => h.event === 'location_updated');
  };
  await context.setGeolocation({ latitude: 41.89, longitude: -87.64 });
  for (let i = 0; i < 50 && (await updates()).length === 0; i += 1) await page.waitForTimeout(200);
  const first = await updates();
  assert.equal(first.length, 1);
  assert.equal(first[0].location.lat, 41.89);
  await context.setGeolocation({ latitude: 41.95, longitude: -87.7 });
  await page.waitForTimeout(3000);
  assert.equal((await updates()).length, 1, 'a second move within 30 s waits');
  await context.close();
});

test('the console pages through open alerts newest first and resolves one', async () => {
  const staff = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await staff.newPage();
  await page.goto(base + '/console?limit=1');
  await page.fill('#token', staffToken('mx-cg-chicago'));
  await page.click('#token-submit');
  const firstRow = page.locator('#alerts [data-alert-id]');
  await firstRow.waitFor();
  const newest = await firstRow.getAttribute('data-alert-id');
  assert.equal(await page.locator('#alerts tr').count(), 1);
  await page.click('#next-page');
  await page.waitForFunction((id) => {
    const b = document.querySelector('#alerts [data-alert-id]');
    return b && b.dataset.alertId !== id;
  }, newest);
  const older = await firstRow.getAttribute('data-alert-id');
  await page.click('#first-page');
  await page.waitForFunction((id) => document.querySelector('#alerts [data-alert-id]')?.dataset.alertId === id, newest);

  // Newest first, as the API answers.
  const token = staffToken('mx-cg-chicago');
  const listed = await (await fetch(`${base}/v1/consulates/mx-cg-chicago/alerts?limit=2`, { headers: { authorization: 'Bearer ' + token } })).json();
  assert.deepEqual(listed.alerts.map((a) => a.alert_id), [newest, older]);

  await openInConsole(page, newest);
  await page.selectOption('#outcome', 'safe');
  await page.fill('#resolve-note', 'Llamamos y está bien');
  await page.click('#resolve');
  await page.locator('#d-status').filter({ hasText: 'resolved' }).waitFor();
  assert.equal(await page.isVisible('#resolve-form'), false);
  await staff.close();
});

test('a check-in shows its deadline and is confirmed with the PIN', async () => {
  const { context, page } = await registeredPhone('Hilda Cita');
  await page.click('#checkin summary');
  const at = new Date(Date.now() + 2 * 3600 * 1000);
  const hhmm = `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
  await page.fill('#checkin-time', hhmm);
  await page.fill('#checkin-note', 'Cita en la corte');
  await page.click('#checkin-start');
  await page.locator('#checkin-deadline').filter({ hasText: 'Si no confirma antes de las' }).waitFor();
  await checkAccessibility(page, 'a pending check-in');
  const { checkin_id: id } = await page.evaluate(() => JSON.parse(localStorage.getItem('ab.checkin')));
  const token = await page.evaluate(() => JSON.parse(localStorage.getItem('ab.token')));
  const status = async () => (await (await fetch(`${base}/v1/checkins/${id}`, { headers: { authorization: 'Bearer ' + token } })).json()).status;
  assert.equal(await status(), 'pending');
  await page.fill('#checkin-pin', '2468');
  await page.click('#checkin-confirm');
  await page.locator('#notice').filter({ hasText: 'Confirmado' }).waitFor();
  assert.equal(await status(), 'confirmed');
  assert.equal(await page.isVisible('#checkin-pending'), false);
  await context.close();
});

test('once visited, the page opens without a network (service worker)', async () => {
  const { context, page } = await phone();
  await page.evaluate(async () => { await navigator.serviceWorker.ready; });
  await page.reload(); // now controlled: the shell is cached on the way
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
  await context.setOffline(true);
  await page.reload();
  await page.locator('#register').waitFor();
  assert.equal(await page.isVisible('#press'), false);
  await context.close();
});

test('contacts change with the PIN; under the duress PIN the page says saved and staff are told', async () => {
  const { context, page } = await registeredPhone('Irma Contactos');
  await page.click('#contacts-details summary');
  assert.equal(await page.inputValue('#contacts-edit-0-name'), 'Luis');
  await page.click('#add-contact-edit');
  await page.fill('#contacts-edit-1-name', 'Kim');
  await page.fill('#contacts-edit-1-email', 'kim@example.org');
  await page.fill('#contacts-pin', '0000');
  await page.click('#contacts-save');
  await page.locator('#notice').filter({ hasText: 'PIN incorrecto' }).waitFor();
  await page.fill('#contacts-pin', '2468');
  await page.click('#contacts-save');
  await page.locator('#notice').filter({ hasText: 'Contactos guardados' }).waitFor();
  assert.equal((await page.evaluate(() => JSON.parse(localStorage.getItem('ab.contacts')))).length, 2);

  await page.click('#contacts-details summary');
  await page.fill('#contacts-edit-1-email', 'someone-else@example.org');
  await page.fill('#contacts-pin', '1357');
  await page.click('#contacts-save');
  await page.locator('#notice').filter({ hasText: 'Contactos guardados' }).waitFor();

  const staff = await console_();
  const row = staff.page.locator('#alerts tr', { hasText: 'Irma Contactos' });
  await row.waitFor({ timeout: 15000 });
  assert.match(await row.textContent(), /DURESS/);
  await staff.context.close();
  await context.close();
});

test('a token the server no longer knows leads back to registration', async () => {
  const { context, page } = await phone();
  await page.evaluate(() => localStorage.setItem('ab.token', JSON.stringify('not-a-token')));
  await page.reload();
  await page.locator('#home').waitFor();
  await located(page);
  await hold(page);
  await page.locator('#register').waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('ab.token')), null);
  await context.close();
});

test('console sign-in through managed login: authorization code with PKCE', async () => {
  // The runner's own policy allows no other origin; on AWS CloudFront's allows the login domain.
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  const domain = 'staff.auth.us-east-1.amazoncognito.com';
  await page.route('**/config.js', (route) => route.fulfill({
    contentType: 'text/javascript',
    body: `window.ALERT_BUTTON_CONFIG = { cognito: { domain: '${domain}', clientId: 'client-1' } };`,
  }));
  let authorize = null;
  await page.route(`https://${domain}/oauth2/authorize**`, (route) => {
    authorize = new URL(route.request().url());
    const back = new URL(authorize.searchParams.get('redirect_uri'));
    back.searchParams.set('code', 'code-1');
    back.searchParams.set('state', authorize.searchParams.get('state'));
    return route.fulfill({ status: 302, headers: { location: back.toString() } });
  });
  let exchange = null;
  await page.route(`https://${domain}/oauth2/token`, (route) => {
    exchange = new URLSearchParams(route.request().postData());
    return route.fulfill({
      contentType: 'application/json',
      headers: { 'access-control-allow-origin': '*' },
      body: JSON.stringify({ id_token: staffToken('mx-cg-chicago'), token_type: 'Bearer' }),
    });
  });
  await page.goto(base + '/console');
  await page.click('#cognito');
  await page.locator('#list').waitFor();

  assert.equal(authorize.searchParams.get('response_type'), 'code');
  assert.equal(authorize.searchParams.get('client_id'), 'client-1');
  assert.equal(authorize.searchParams.get('redirect_uri'), base + '/console');
  assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(exchange.get('grant_type'), 'authorization_code');
  assert.equal(exchange.get('code'), 'code-1');
  const { createHash } = await import('node:crypto');
  const challenge = createHash('sha256').update(exchange.get('code_verifier')).digest('base64url');
  assert.equal(authorize.searchParams.get('code_challenge'), challenge);
  assert.equal(new URL(page.url()).search, '', 'the code leaves the address bar');
  assert.equal(await page.textContent('#consulate-id'), 'mx-cg-chicago');
  await context.close();
});
