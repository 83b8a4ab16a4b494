// The console end to end, in Debian's headless Chromium driven by playwright-core, against a fresh
// `confer serve --demo`. Run by tests/console_e2e.rs:
//
//   node console.mjs <base url> <screenshot path> '<{"callId","chatId","agentDevice"} as JSON>'
//
// Prints one JSON line per step; exits 0 when every scenario passed and no page logged an
// error or had a request fail, other than the ones a scenario causes on purpose (the refused
// removal's HTTP 400, the notification requests of the page that is taken offline).
//
// Every wait is bounded (WAIT_MS); the Rust side bounds the whole run.

import { chromium } from 'playwright-core';

const [base, screenshotPath, configJson] = process.argv.slice(2);
if (!base || !screenshotPath || !configJson) {
  console.error('usage: node console.mjs <base url> <screenshot path> <config json>');
  process.exit(2);
}
const { callId, chatId, agentDevice } = JSON.parse(configJson);

const WAIT_MS = 10_000;
const DESK = { width: 1280, height: 800 };
const PHONE = { width: 375, height: 740 };
const CHROMIUM_ARGS = [
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function step(name, extra = {}) {
  console.log(JSON.stringify({ step: name, ...extra }));
}

// --- what the pages report ---------------------------------------------------------------------

/** Every console error, page error, failed request and HTTP error of every page. */
const problems = [];
/** While a scenario causes failures on purpose: { who, test(problem) } that excuse them. */
const allowances = new Set();
let recording = true;

function record(who, problem) {
  if (!recording) return;
  const allowed = [...allowances].some((a) => a.who === who && a.test(problem));
  problems.push({ who, ...problem, allowed });
}

function allow(who, test) {
  const allowance = { who, test };
  allowances.add(allowance);
  return () => allowances.delete(allowance);
}

const isNotifications = (url) => new URL(url).pathname.startsWith('/api/v2/notifications/');

async function open(browser, who, viewport) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on('console', (message) => {
    if (message.type() === 'error') {
      record(who, { kind: 'console', text: message.text(), url: message.location().url || '' });
    }
  });
  page.on('pageerror', (error) => record(who, { kind: 'pageerror', text: String(error) }));
  page.on('requestfailed', (request) =>
    record(who, {
      kind: 'requestfailed',
      url: request.url(),
      method: request.method(),
      text: (request.failure() || {}).errorText || '',
    }),
  );
  page.on('response', (response) => {
    if (response.status() >= 400) {
      record(who, {
        kind: 'response',
        status: response.status(),
        url: response.url(),
        method: response.request().method(),
      });
    }
  });
  return { who, context, page };
}

// --- helpers -----------------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns { ok: true }; fails after WAIT_MS showing what it last saw. */
async function until(description, probe) {
  const deadline = Date.now() + WAIT_MS;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last.ok) return last;
    await sleep(50);
  }
  throw new Error(`${description}: not within ${WAIT_MS} ms; last seen ${JSON.stringify(last)}`);
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

const callArticle = (page) => page.getByRole('article', { name: `Call ${callId}` });
const chatArticle = (page) => page.getByRole('article', { name: `Chat ${chatId}` });

async function participants(article) {
  if ((await article.count()) === 0) return null;
  return (await article.locator('.participant-name').allInnerTexts()).map((text) => text.trim());
}

async function expectParticipants(article, expected, description) {
  await until(description, async () => {
    const seen = await participants(article);
    return { ok: JSON.stringify(seen) === JSON.stringify(expected), seen };
  });
}

async function expectActivity(page, text) {
  await until(`the activity log says "${text}"`, async () => {
    const seen = await page.locator('#activity').innerText();
    return { ok: seen.includes(text), seen };
  });
}

/** Marks the document, so that a later check tells whether the page was reloaded meanwhile. */
async function markDocument(page) {
  await page.evaluate(() => {
    window.__consoleTestMark = true;
  });
}

async function sameDocument(page) {
  return page.evaluate(() => window.__consoleTestMark === true);
}

async function noHorizontalScroll(page) {
  const [scrollWidth, width] = await page.evaluate(() => [
    document.documentElement.scrollWidth,
    window.innerWidth,
  ]);
  assert(scrollWidth <= width, `the page scrolls sideways: ${scrollWidth} px wide in ${width} px`);
}

/** Signs in with the keyboard only: the user name has the focus, Tab, password, Enter. */
async function signIn({ page }, username) {
  await page.goto(`${base}/console`);
  assert(new URL(page.url()).pathname === '/console/', `/console led to ${page.url()}`);
  await page.waitForFunction(() => document.activeElement && document.activeElement.id === 'username');
  await page.keyboard.type(username);
  await page.keyboard.press('Tab');
  assert(
    await page.evaluate(() => document.activeElement.id === 'password'),
    'Tab from the user name does not lead to the password',
  );
  await page.keyboard.type('demo');
  await page.keyboard.press('Enter');
  await page.getByText(`Signed in as ${username}`).waitFor();
  await page.getByText('Live updates: on').waitFor();
}

// --- the scenarios -----------------------------------------------------------------------------

async function run(browser) {
  // agent15000 signs in and sees the demo call with 15001 and 15002, each removable.
  const agent = await open(browser, 'agent15000', DESK);
  await signIn(agent, 'agent15000');
  await expectParticipants(callArticle(agent.page), ['15001', '15002'], 'agent15000 sees 15001 and 15002');
  for (const number of ['15001', '15002']) {
    await agent.page.getByRole('button', { name: `Remove ${number} from call ${callId}` }).waitFor();
  }
  step('agent15000 signed in and sees the call');

  // agent15002, on a phone-sized screen, sees the same call from its side, and may remove no one.
  const other = await open(browser, 'agent15002', PHONE);
  await signIn(other, 'agent15002');
  await expectParticipants(callArticle(other.page), ['15000', '15001'], 'agent15002 sees 15000 and 15001');
  assert(
    (await callArticle(other.page).getByRole('button').count()) === 0,
    'agent15002 (not the owner) was offered a Remove button',
  );
  await noHorizontalScroll(other.page);
  await markDocument(other.page);
  step('agent15002 signed in on a 375 px screen');

  // The supervisor picks agent15000 from the agent list (GET /api/v2/users), listens in, and
  // sees every party of the call.
  const supervisor = await open(browser, 'supervisor', DESK);
  await signIn(supervisor, 'supervisor');
  const agentList = supervisor.page.getByLabel('Agent', { exact: true });
  const agentLabel = 'agent15000 (line 15000)';
  await until('the agent list is loaded', async () => {
    const seen = (await agentList.locator('option').allInnerTexts()).map((text) => text.trim());
    return { ok: seen.includes(agentLabel), seen };
  });
  const offered = (await agentList.locator('option').allInnerTexts()).map((text) => text.trim());
  assert(
    JSON.stringify(offered) ===
      JSON.stringify(['Choose an agent…', agentLabel, 'agent15002 (line 15002)']),
    `the agent list offers ${JSON.stringify(offered)} (agents with a device, not the supervisor)`,
  );
  await supervisor.page.getByLabel('or type a device (id or URI)').waitFor();
  await agentList.selectOption({ label: agentLabel });
  const [listenIn] = await Promise.all([
    supervisor.page.waitForRequest(
      (r) => r.method() === 'POST' && new URL(r.url()).pathname.startsWith('/api/v2/me/devices/'),
    ),
    supervisor.page.getByRole('button', { name: 'Start listening in' }).click(),
  ]);
  const listenInBody = listenIn.postDataJSON();
  assert(
    listenInBody.operationName === 'ListenIn' &&
      new URL(listenInBody.targetDeviceUri).pathname === `/api/v2/devices/${agentDevice}`,
    `ListenIn sent ${JSON.stringify(listenInBody)}`,
  );
  await supervisor.page.getByRole('status').filter({ hasText: `Listening in on ${agentLabel}.` }).waitFor();
  await expectParticipants(
    callArticle(supervisor.page),
    ['15000', '15001', '15002'],
    'the supervisor sees the whole call',
  );
  step('the supervisor monitors agent15000');

  // A refused removal: the owner cannot be removed; the server's own message shows next to 15000,
  // and 15000 stays.
  const ownerRefused = allow(
    'supervisor',
    (p) =>
      (p.kind === 'response' && p.status === 400 && p.url.endsWith(`/api/v2/me/calls/${callId}`)) ||
      (p.kind === 'console' && p.text.includes('status of 400') && p.url.endsWith(`/api/v2/me/calls/${callId}`)),
  );
  const [refusal] = await Promise.all([
    supervisor.page.waitForResponse(
      (r) => r.request().method() === 'POST' && r.url().endsWith(`/api/v2/me/calls/${callId}`),
    ),
    supervisor.page.getByRole('button', { name: `Remove 15000 from call ${callId}` }).click(),
  ]);
  const refusalBody = await refusal.json();
  assert(refusal.status() === 400 && refusalBody.statusCode === 2, `refusal: ${JSON.stringify(refusalBody)}`);
  const ownerItem = callArticle(supervisor.page).getByRole('listitem').filter({ hasText: '15000' });
  await until('the refusal shows the server message next to 15000', async () => {
    const seen = await ownerItem.locator('.refusal').allInnerTexts();
    return { ok: seen.length === 1 && seen[0].includes(refusalBody.statusMessage), seen };
  });
  await expectParticipants(
    callArticle(supervisor.page),
    ['15000', '15001', '15002'],
    'nothing disappears after a refusal',
  );
  await expectActivity(supervisor.page, refusalBody.statusMessage);
  ownerRefused();
  await supervisor.page.screenshot({ path: screenshotPath, fullPage: true, animations: 'disabled' });
  step('a refused removal shows the server message', { statusMessage: refusalBody.statusMessage });

  // agent15000 removes 15001: gone for agent15000, and without a reload for agent15002 and the
  // supervisor.
  await agent.page.getByRole('button', { name: `Remove 15001 from call ${callId}` }).click();
  await expectParticipants(callArticle(agent.page), ['15002'], 'agent15000 sees 15001 gone');
  await expectActivity(agent.page, `15001 left call ${callId}`);
  // Focus does not get lost with the removed button: it goes to the call's heading.
  assert(
    await agent.page.evaluate(() => document.activeElement && document.activeElement.tagName === 'H3'),
    'focus was lost with the removed participant',
  );
  await expectParticipants(callArticle(other.page), ['15000'], 'agent15002 sees 15001 gone');
  await expectActivity(other.page, `15001 left call ${callId}`);
  assert(await sameDocument(other.page), 'agent15002 had to reload');
  await expectParticipants(
    callArticle(supervisor.page),
    ['15000', '15002'],
    'the supervisor sees 15001 gone',
  );
  step('agent15000 removed 15001; the others saw it live');

  // agent15002 loses its connection: the banner shows; the supervisor removes 15002 meanwhile
  // (the call ends, too few parties); once back, agent15002 sees what it missed.
  const outage = allow('agent15002', (p) => Boolean(p.url) && isNotifications(p.url));
  await other.context.setOffline(true);
  const banner = other.page.getByRole('alert').filter({ hasText: 'Connection to the server lost' });
  await banner.waitFor();
  step('agent15002 offline: the banner shows');

  await supervisor.page.getByRole('button', { name: `Remove 15002 from call ${callId}` }).click();
  await callArticle(supervisor.page).waitFor({ state: 'detached' });
  await callArticle(agent.page).waitFor({ state: 'detached' });
  await expectActivity(agent.page, `Call ${callId} is over for you`);
  assert((await callArticle(other.page).count()) === 1, 'offline, agent15002 still shows the call');
  assert(await banner.isVisible(), 'the banner went away while offline');
  step('the supervisor removed 15002 while agent15002 was offline');

  await other.context.setOffline(false);
  await banner.waitFor({ state: 'hidden' });
  await callArticle(other.page).waitFor({ state: 'detached' });
  await expectActivity(other.page, `Call ${callId} is over for you`);
  await expectActivity(other.page, 'Connection restored');
  assert(await sameDocument(other.page), 'agent15002 had to reload to recover');
  await other.page.getByText('Live updates: on').waitFor();
  step('agent15002 recovered by itself and saw the missed update');

  // A second, quiet outage: with nothing to deliver, the page still says at once that it is back
  // (it does not wait for the server's 30 s hold to end).
  await other.context.setOffline(true);
  await banner.waitFor();
  await other.context.setOffline(false);
  await banner.waitFor({ state: 'hidden' });
  await other.page.getByText('Live updates: on').waitFor();
  outage();
  step('agent15002 recovered from a quiet outage');

  // A chat: the transcript, and a removal with a message to the customer treated as System.
  const chatter = await open(browser, 'test_consult', DESK);
  await signIn(chatter, 'test_consult');
  const chat = chatArticle(chatter.page);
  await chat.getByText('Hello, my order has not arrived.').waitFor();
  await expectParticipants(
    chat,
    ['test_consult (agent, you)', 'test_consult_clientL (customer)', 'chat_consult (agent)'],
    'test_consult sees the chat participants',
  );
  assert((await chat.getByRole('button').count()) === 1, 'only chat_consult should be removable');
  const note = 'A colleague will follow up by email.';
  await chat.getByLabel('Message to the customer (optional)').fill(note);
  await chat.getByLabel('Treat the message as').selectOption('System');
  const [removal] = await Promise.all([
    chatter.page.waitForRequest(
      (r) => r.method() === 'POST' && r.url().endsWith(`/api/v2/me/chats/${chatId}`),
    ),
    chat.getByRole('button', { name: `Remove chat_consult from chat ${chatId}` }).click(),
  ]);
  const sent = removal.postDataJSON();
  assert(
    sent.operationName === 'RemoveParticipantFromConference' &&
      sent.text === note &&
      sent.treatAs === 'System' &&
      /\/users\/[0-9a-f]+$/.test(sent.targetUri),
    `the chat removal sent ${JSON.stringify(sent)}`,
  );
  await expectParticipants(
    chat,
    ['test_consult (agent, you)', 'test_consult_clientL (customer)'],
    'chat_consult is gone from the chat',
  );
  await chat.locator('.transcript').getByText('chat_consult left').waitFor();
  await chat.locator('.transcript').getByText(note).waitFor();
  await expectActivity(chatter.page, `chat_consult left chat ${chatId}`);
  step('test_consult removed chat_consult with a message to the customer');

  // A reload resumes the session; signing out forgets it (the HttpOnly cookie included).
  const reloading = allow(
    'agent15000',
    (p) => p.kind === 'requestfailed' && p.text === 'net::ERR_ABORTED' && isNotifications(p.url),
  );
  await agent.page.reload();
  await agent.page.getByText('Signed in as agent15000').waitFor();
  await agent.page.getByText('No calls right now.').waitFor();
  await agent.page.getByText('Live updates: on').waitFor();
  reloading();
  await agent.page.getByRole('button', { name: 'Sign out' }).click();
  await agent.page.getByRole('heading', { name: 'Sign in' }).waitFor();
  const cookies = await agent.context.cookies(base);
  assert(!cookies.some((c) => c.name === 'JSESSIONID'), `the session cookie stayed: ${JSON.stringify(cookies)}`);
  await agent.page.reload();
  await agent.page.getByRole('heading', { name: 'Sign in' }).waitFor();
  step('reload resumes, sign-out forgets the session');

  recording = false;
  return [agent, other, supervisor, chatter];
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: CHROMIUM_ARGS,
  timeout: 30_000,
});
let failure = null;
try {
  const pages = await run(browser);
  for (const { context } of pages) await context.close();
} catch (error) {
  failure = error;
} finally {
  recording = false;
  await browser.close();
}

const unexpected = problems.filter((p) => !p.allowed);
const excused = problems.filter((p) => p.allowed);
step('problems', { unexpected, excused });
if (failure) {
  console.log(JSON.stringify({ error: String(failure.stack || failure) }));
  process.exit(1);
}
if (unexpected.length > 0) {
  console.log(JSON.stringify({ error: 'console errors or failed requests', unexpected }));
  process.exit(1);
}
if (!excused.some((p) => p.who === 'supervisor' && p.kind === 'response' && p.status === 400)) {
  console.log(JSON.stringify({ error: 'the refused removal never reached the server as a request' }));
  process.exit(1);
}
step('done');
