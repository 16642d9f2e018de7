// Paid access in real Chromium. A creator's paid stream, published by the studio page, with a
// free pass and a paid pass covering it: a viewer signs up on the watch page, meets the
// access panel, is told that payments are off when buying the paid pass, claims the free one
// and plays the stream with a playback token the page renews before it expires. The creator
// signs in on /dashboard and makes a pass and a stream there.
//
// Payments are off on the server the pages talk to, yet its channel sells a paid pass: the
// channel is set up by the same data dir run with a Stripe key (against a stand-in for the
// catalogue calls), then the server restarts without one, as when an operator turns payments
// off. One browser; the steps run in order and a step that needs an earlier one says so.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import {
  Greenroom,
  inboundStats,
  keepIceOnLoopback,
  launchChromium,
  statusText,
  waitFor,
} from './harness.js';
import { TEST_SECRET_KEY, TEST_WEBHOOK_SECRET, startStripeCatalog } from './stripe-catalog.js';

const MEDIA_TIMEOUT_MS = 30_000;
const STEP_TIMEOUT_MS = 90_000;
/** Short-lived playback tokens, so the page's renewal happens during the test. */
const TOKEN_TTL_SECS = 10;
const PASSWORD = 'correct horse battery';
const PAYMENTS_OFF = 'Payments are not set up on this server';

const unique = crypto.randomBytes(4).toString('hex');
const creator = {
  email: `creator-${unique}@example.com`,
  display_name: 'Stage Door',
  handle: `stage_${unique}`,
};
const viewer = { email: `viewer-${unique}@example.com`, display_name: 'Front Row' };

/**
 * Makes the creator, the channel, the paid stream and its passes on a server with payments on
 * (paid passes need Stripe); returns the data dir, the creator's session token and the ids.
 */
async function seedChannel() {
  const stripe = await startStripeCatalog();
  const seeder = await Greenroom.start({
    env: {
      GREENROOM_STRIPE_SECRET_KEY: TEST_SECRET_KEY,
      GREENROOM_STRIPE_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
      GREENROOM_STRIPE_API_BASE: stripe.apiBase,
    },
  });
  try {
    const call = async (method, path, body, token) => {
      const answer = await seeder.api(method, path, { body, token, admin: false });
      assert.equal(answer.status, 201, `${method} ${path}: ${JSON.stringify(answer.body)}`);
      return answer.body;
    };
    const session = await call('POST', '/api/v1/accounts', {
      email: creator.email,
      password: PASSWORD,
      display_name: creator.display_name,
      role: 'creator',
    });
    const token = session.token;
    await call(
      'POST',
      '/api/v1/channels',
      { handle: creator.handle, display_name: creator.display_name },
      token,
    );
    const stream = await call(
      'POST',
      '/api/v1/streams',
      { title: 'Members only', access: 'paid', price_tokens: 50 },
      token,
    );
    const passes = `/api/v1/channels/${creator.handle}/passes`;
    const freePass = await call(
      'POST',
      passes,
      { name: 'Opening night', kind: 'free', stream_ids: [stream.id] },
      token,
    );
    const paidPass = await call(
      'POST',
      passes,
      { name: 'Season ticket', kind: 'one_time', amount_minor: 1500 },
      token,
    );
    assert.deepEqual(stripe.requests, ['POST /v1/products', 'POST /v1/prices']);
    return { dataDir: seeder.dataDir, token, stream, freePass, paidPass };
  } finally {
    await seeder.stop({ keepData: true });
    await stripe.close();
  }
}

describe('paid access through the watch page and the dashboard', () => {
  let seeded;
  let server;
  let browser;
  let viewerContext;
  let viewerPage;
  let creatorContext;
  let dashboard;
  const tokenAnswers = []; // {at, body} of every playback token the viewer page was given
  const sessionRenewals = []; // {token, status} of the page's WHEP session PATCHes with a token

  const step = (name, fn) =>
    it(name, { timeout: STEP_TIMEOUT_MS }, async () => {
      try {
        await fn();
      } catch (err) {
        if (server) err.message += `\n--- greenroom log (tail) ---\n${server.logTail(30)}`;
        throw err;
      }
    });

  const asCreator = (method, path, body) =>
    server.api(method, path, { body, token: seeded.token, admin: false });

  const waitStatus = (page, want, what) =>
    waitFor(`${what} #status "${want}"`, () => statusText(page), (s) => s === want, {
      timeoutMs: MEDIA_TIMEOUT_MS,
    });

  async function newPage(context, name) {
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error(`[${name}] page error: ${err.message}`));
    return page;
  }

  before(async () => {
    seeded = await seedChannel();
    server = await Greenroom.start({
      dataDir: seeded.dataDir,
      env: { GREENROOM_PLAYBACK_TOKEN_TTL_SECS: String(TOKEN_TTL_SECS) },
    });
    browser = await launchChromium();
    creatorContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await keepIceOnLoopback(creatorContext);
  });

  after(async () => {
    if (browser) await browser.close().catch(() => {});
    if (server) await server.stop();
  });

  step('the studio publishes the paid stream with its stream key', async () => {
    const studio = await newPage(creatorContext, 'studio');
    const { id, stream_key: key } = seeded.stream;
    await studio.goto(`${server.baseUrl}/studio/${id}#key=${key}`);
    await studio.click('#golive');
    const shown = await waitFor(
      'studio #status "live"',
      () => statusText(studio),
      (s) => s === 'live' || s.startsWith('error'),
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
    assert.equal(shown, 'live');
  });

  step('a signed-out viewer is locked out and sees what gives access', async () => {
    viewerContext = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      locale: 'en-US', // prices as "$15.00"
    });
    await keepIceOnLoopback(viewerContext);
    viewerPage = await newPage(viewerContext, 'viewer');
    const whep = [];
    viewerPage.on('request', (request) => {
      if (request.url().includes('/whep/') && request.method() === 'POST') whep.push(request);
    });
    viewerPage.on('response', async (response) => {
      if (!response.url().endsWith('/playback-token') || response.status() !== 201) return;
      tokenAnswers.push({ at: Date.now(), body: await response.json() });
    });
    viewerPage.on('requestfinished', async (request) => {
      if (request.method() !== 'PATCH' || !request.url().includes('/whep/')) return;
      const body = JSON.parse(request.postData() || '{}');
      if (!body.token) return;
      const response = await request.response();
      sessionRenewals.push({ token: body.token, status: response?.status() });
    });
    await viewerPage.goto(`${server.baseUrl}/watch/${seeded.stream.id}`);

    await waitStatus(viewerPage, 'locked', 'signed-out viewer');
    assert.equal(await viewerPage.textContent('#title'), 'Members only');
    assert.equal(await viewerPage.textContent('#channel'), `@${creator.handle}`);
    assert.ok(await viewerPage.isVisible('#signin-panel'), 'the sign-in form is offered');
    const passes = viewerPage.locator('#passes [data-pass-id]');
    await waitFor('two passes listed', () => passes.count(), (n) => n === 2);
    const free = viewerPage.locator(`[data-pass-id="${seeded.freePass.id}"]`);
    const paid = viewerPage.locator(`[data-pass-id="${seeded.paidPass.id}"]`);
    assert.match(await free.textContent(), /Opening night.*Free.*Claim/s);
    assert.match(await paid.textContent(), /Season ticket.*\$15\.00.*Buy/s);
    assert.equal(await viewerPage.textContent('#enroll-button'), 'Enrol for 50 tokens');
    assert.equal(await viewerPage.isVisible('#tip-form'), false, 'nobody cannot tip');
    assert.equal(whep.length, 0, 'no WHEP offer without access');
  });

  step('the viewer signs up on the page; buying the paid pass says payments are off', async () => {
    assert.ok(viewerPage, 'needs the locked viewer page');
    const form = viewerPage.locator('#account-form');
    await form.locator('button[data-mode="signup"]').click();
    await form.locator('[name="display_name"]').fill(viewer.display_name);
    await form.locator('[name="email"]').fill(viewer.email);
    await form.locator('[name="password"]').fill(PASSWORD);
    await form.locator('button[type="submit"]').click();
    await viewerPage.waitForSelector('#account-bar:not([hidden])');
    const shownName = await viewerPage.textContent('#account-bar [data-account-name]');
    assert.equal(shownName, viewer.display_name);
    assert.equal(await viewerPage.isVisible('#signin-panel'), false);
    assert.equal(await statusText(viewerPage), 'locked', 'an account without a pass stays locked');
    const me = await viewerPage.evaluate(() => fetch('/api/v1/me').then((r) => r.json()));
    assert.equal(me.role, 'viewer');
    await viewerPage.waitForSelector('#wallet-balance:has-text("0 tokens")');

    const checkoutPath = `/passes/${seeded.paidPass.id}/checkout`;
    const answer = viewerPage.waitForResponse((r) => r.url().endsWith(checkoutPath));
    await viewerPage.click(`[data-pass-id="${seeded.paidPass.id}"] button`);
    const refused = await answer;
    assert.equal(refused.status(), 503);
    assert.equal((await refused.json()).error.code, 'payments_disabled');
    await viewerPage.waitForSelector(`#access-message:has-text("${PAYMENTS_OFF}")`);
    assert.equal(await statusText(viewerPage), 'locked');

    // The tip box is there for a signed-in viewer and says the same.
    await viewerPage.fill('#tip-form [name="amount"]', '5');
    await viewerPage.click('#tip-form button[type="submit"]');
    await viewerPage.waitForSelector(`#tip-form [data-form-error]:has-text("${PAYMENTS_OFF}")`);
  });

  step('claiming the free pass plays the stream with a playback token', async () => {
    assert.ok(viewerPage, 'needs the signed-up viewer page');
    const offer = viewerPage.waitForRequest(
      (r) => r.url().includes('/whep/') && r.method() === 'POST',
      { timeout: MEDIA_TIMEOUT_MS },
    );
    await viewerPage.click(`[data-pass-id="${seeded.freePass.id}"] button`);
    const request = await offer;
    assert.match(request.headers().authorization || '', /^Bearer gr1\./, 'WHEP carries the token');
    await waitStatus(viewerPage, 'playing', 'viewer with the free pass');
    assert.equal(await viewerPage.isVisible('#access'), false, 'the access panel is gone');
    const first = await waitFor(
      'the viewer decoding video',
      () => inboundStats(viewerPage),
      (s) => s.video && s.video.framesDecoded > 0,
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
    await waitFor(
      `framesDecoded to grow past ${first.video.framesDecoded}`,
      () => inboundStats(viewerPage),
      (s) => s.video?.framesDecoded > first.video.framesDecoded + 10,
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
    const grants = await viewerPage.evaluate(() =>
      fetch('/api/v1/me/grants').then((r) => r.json()),
    );
    assert.deepEqual(
      grants.grants.map((g) => [g.pass_id, g.source, g.active]),
      [[seeded.freePass.id, 'free', true]],
    );
  });

  step('coming back from a cancelled checkout says nothing was charged', async () => {
    assert.ok(viewerContext, 'needs the viewer');
    const page = await newPage(viewerContext, 'returning viewer');
    try {
      await page.goto(`${server.baseUrl}/watch/${seeded.stream.id}?checkout=ck_gone&cancelled=1`);
      await page.waitForSelector('#notice:has-text("The payment was cancelled")');
      assert.equal(new URL(page.url()).search, '', 'the checkout parameters are gone');
    } finally {
      await page.close();
    }
  });

  step('the creator signs in on the dashboard and finds the channel', async () => {
    const page = await newPage(creatorContext, 'dashboard');
    dashboard = page;
    await page.goto(`${server.baseUrl}/dashboard`);
    await page.waitForSelector('#signin:not([hidden])');
    await page.fill('#account-form [name="email"]', creator.email);
    await page.fill('#account-form [name="password"]', PASSWORD);
    await page.click('#account-form button[type="submit"]');
    await page.waitForSelector('#workspace:not([hidden])');
    assert.equal(await page.textContent('#channel-handle'), `@${creator.handle}`);
    assert.match(await page.textContent('#stripe-state'), /Not connected/);
    const card = page.locator(`[data-stream-id="${seeded.stream.id}"]`);
    assert.equal(await card.locator('[data-field="status"]').textContent(), 'live');
    const studioLink = await card.locator('[data-link="studio"]').getAttribute('href');
    assert.equal(studioLink, seeded.stream.studio_url.replace(/^http:\/\/[^/]+/, server.baseUrl));
    assert.equal(await page.locator('#passes [data-pass-id]').count(), 2);
    // The live stream's tip feed is open.
    await waitFor(
      'the tip feed listening',
      () => page.textContent('#tip-feed-state'),
      (s) => s === 'listening',
    );
  });

  step('the creator makes a pass and a stream on the dashboard', async () => {
    const page = dashboard;
    assert.ok(page, 'needs the signed-in dashboard');

    await page.click('#pass-new summary');
    const passForm = page.locator('#pass-form');
    await passForm.locator('[name="name"]').fill('Backstage');
    await passForm.locator('[name="kind"]').selectOption('free');
    await passForm.locator('[name="scope"]').selectOption('streams');
    await passForm.locator(`input[name="stream_ids"][value="${seeded.stream.id}"]`).check();
    await passForm.locator('button[type="submit"]').click();
    await page.waitForSelector('#passes [data-pass-id]:has-text("Backstage")');
    const { body: listed } = await server.api('GET', `/api/v1/channels/${creator.handle}/passes`, {
      admin: false,
    });
    const backstage = listed.passes.find((p) => p.name === 'Backstage');
    assert.ok(backstage, `Backstage in ${JSON.stringify(listed)}`);
    assert.equal(backstage.kind, 'free');
    assert.deepEqual(backstage.stream_ids, [seeded.stream.id]);

    // A paid pass needs Stripe: the form says payments are off.
    await page.click('#pass-new summary');
    await passForm.locator('[name="name"]').fill('Patron');
    await passForm.locator('[name="kind"]').selectOption('monthly');
    await passForm.locator('[name="amount"]').fill('4.99');
    await passForm.locator('button[type="submit"]').click();
    await page.waitForSelector(`#pass-form [data-form-error]:has-text("${PAYMENTS_OFF}")`);

    await page.click('#stream-new summary');
    const streamForm = page.locator('#stream-form');
    await streamForm.locator('[name="title"]').fill('Encore');
    await streamForm.locator('[name="access"]').selectOption('paid');
    await streamForm.locator('[name="price_tokens"]').fill('30');
    const tomorrow = new Date(Date.now() + 24 * 3600 * 1000);
    const local = new Date(tomorrow.getTime() - tomorrow.getTimezoneOffset() * 60_000);
    await streamForm.locator('[name="scheduled_at"]').fill(local.toISOString().slice(0, 16));
    await streamForm.locator('button[type="submit"]').click();
    await page.waitForSelector('#streams [data-stream-id]:has-text("Encore")');
    const { body: streams } = await asCreator('GET', '/api/v1/streams');
    const encore = streams.find((s) => s.title === 'Encore');
    assert.ok(encore, `Encore in ${JSON.stringify(streams.map((s) => s.title))}`);
    assert.equal(encore.access, 'paid');
    assert.equal(encore.price_tokens, 30);
    assert.equal(encore.status, 'scheduled');
    assert.equal(encore.channel, creator.handle);
  });

  step('the viewer page renewed its playback token before it expired', async () => {
    assert.ok(tokenAnswers.length > 0, 'needs the playing viewer');
    await waitFor('a renewed playback token', () => tokenAnswers.length, (n) => n >= 2, {
      timeoutMs: TOKEN_TTL_SECS * 1000 + 5000,
    });
    const [first, renewed] = tokenAnswers;
    assert.notEqual(renewed.body.token, first.body.token);
    assert.ok(
      renewed.at < Date.parse(first.body.expires_at),
      `renewed at ${new Date(renewed.at).toISOString()}, first expired ${first.body.expires_at}`,
    );
    // The WebRTC session got the renewed token (the server ends it when its token runs out).
    await waitFor(
      'the WHEP session renewed with the new token',
      () => sessionRenewals,
      (list) => list.some((r) => r.token === renewed.body.token),
    );
    assert.ok(
      sessionRenewals.every((r) => r.status === 204),
      JSON.stringify(sessionRenewals),
    );
    assert.equal(await statusText(viewerPage), 'playing');
  });
});
