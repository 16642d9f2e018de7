// One live stream, end to end, in real Chromium: the studio page publishes the fake camera
// (1280x720, 3 simulcast layers) over WHIP; watch pages play it over WHEP.
//
// The steps share one server, one browser and one stream and run in order; a step that needs
// an earlier one to have worked says so in its failure message.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  Greenroom,
  inboundStats,
  keepIceOnLoopback,
  launchChromium,
  outboundStats,
  statusText,
  videoLayersOf,
  waitFor,
} from './harness.js';

const MEDIA_TIMEOUT_MS = 45_000;
const STEP_TIMEOUT_MS = 240_000;

describe('live stream through the studio and watch pages', () => {
  let server;
  let browser;
  let context;
  let stream;
  let studio;
  const viewers = {}; // name -> page

  // Adds the server's last log lines to a failing step.
  const step = (name, fn) =>
    it(name, { timeout: STEP_TIMEOUT_MS }, async () => {
      try {
        await fn();
      } catch (err) {
        if (server) err.message += `\n--- greenroom log (tail) ---\n${server.logTail(30)}`;
        throw err;
      }
    });

  const watchUrl = (query = '') => `${server.baseUrl}/watch/${stream.id}${query}`;

  async function openWatch(name, query) {
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error(`[${name}] page error: ${err.message}`));
    await page.goto(watchUrl(query));
    viewers[name] = page;
    return page;
  }

  async function waitStatus(page, want, what) {
    return waitFor(`${what} #status "${want}"`, () => statusText(page), (s) => s === want, {
      timeoutMs: MEDIA_TIMEOUT_MS,
    });
  }

  /** Waits until a watch page decodes video `width` wide, then checks frames keep coming. */
  async function waitDecoding(page, width, what) {
    const first = await waitFor(
      `${what} to decode ${width}-wide video`,
      () => inboundStats(page),
      (s) => s.video && s.video.frameWidth === width && s.video.framesDecoded > 0,
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
    await waitFor(
      `${what} framesDecoded to grow past ${first.video.framesDecoded} at ${width} wide`,
      () => inboundStats(page),
      (s) =>
        s.video?.frameWidth === width && s.video.framesDecoded > first.video.framesDecoded + 10,
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
  }

  before(async () => {
    server = await Greenroom.start();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await keepIceOnLoopback(context);
    stream = await server.createStream('browser test');
  });

  after(async () => {
    if (browser) await browser.close().catch(() => {});
    if (server) await server.stop();
  });

  step('the studio shows the server\'s error for a wrong stream key', async () => {
    const page = await context.newPage();
    try {
      await page.goto(`${server.baseUrl}/studio/${stream.id}#key=not-the-key`);
      assert.equal(await page.inputValue('#key'), 'not-the-key');
      const answer = page.waitForResponse(
        (r) => r.url().includes('/whip/') && r.request().method() === 'POST',
        { timeout: MEDIA_TIMEOUT_MS },
      );
      await page.click('#golive');
      const res = await answer;
      const body = await res.json();
      assert.ok(res.status() === 401 || res.status() === 403, `wrong key answered ${res.status()}`);
      assert.equal(typeof body?.error?.message, 'string', `JSON error: ${JSON.stringify(body)}`);
      const shown = await waitFor(
        'studio #status "error: …"',
        () => statusText(page),
        (s) => s.startsWith('error'),
        { timeoutMs: MEDIA_TIMEOUT_MS },
      );
      assert.equal(shown, `error: ${body.error.message}`);
      assert.equal(await page.isDisabled('#golive'), false, '#golive usable again');
    } finally {
      await page.close();
    }
  });

  step('c1. a watch page opened before the stream is live connects and waits', async () => {
    const page = await openWatch('early', '');
    await waitStatus(page, 'waiting', 'early viewer');
    const { body } = await server.api('GET', `/api/v1/streams/${stream.id}/status`, {
      admin: false,
    });
    assert.equal(body.status, 'idle', `public status before going live: ${JSON.stringify(body)}`);
  });

  step('a. the studio publishes 1280x720 in 3 simulcast layers', async () => {
    studio = await context.newPage();
    studio.on('pageerror', (err) => console.error(`[studio] page error: ${err.message}`));
    await studio.goto(`${server.baseUrl}/studio/${stream.id}#key=${stream.stream_key}`);
    assert.equal(await studio.inputValue('#key'), stream.stream_key, '#key from location.hash');
    assert.equal(await studio.isChecked('#simulcast'), true, '#simulcast checked by default');
    assert.equal(await studio.inputValue('#source'), 'camera');
    assert.equal(await statusText(studio), 'idle');

    await studio.click('#golive');
    await waitFor(
      'studio #status "live"',
      () => statusText(studio),
      (s) => s === 'live' || s.startsWith('error'),
      { timeoutMs: MEDIA_TIMEOUT_MS },
    ).then((s) => assert.equal(s, 'live', 'studio #status after Go live'));

    const settings = await studio.evaluate(() => {
      const sender = window.greenroom.pc.getSenders().find((s) => s.track?.kind === 'video');
      return sender.track.getSettings();
    });
    assert.equal(`${settings.width}x${settings.height}`, '1280x720', 'captured camera size');

    // Three video rids, each sending (bytes growing), the full layer at 1280 wide.
    const sending = (s) => s.video.filter((v) => v.rid && v.bytesSent > 0);
    const first = await waitFor(
      'studio getStats: 3 outbound video rids sending, f at 1280 wide',
      () => outboundStats(studio),
      (s) =>
        sending(s).length === 3 && s.video.some((v) => v.rid === 'f' && v.frameWidth === 1280),
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
    assert.deepEqual(
      first.video.map((v) => v.rid).sort(),
      ['f', 'h', 'q'],
      'outbound video rids',
    );
    await waitFor(
      'every rid to keep sending (bytesSent growing)',
      () => outboundStats(studio),
      (s) =>
        ['q', 'h', 'f'].every((rid) => {
          const now = s.video.find((v) => v.rid === rid);
          const then = first.video.find((v) => v.rid === rid);
          return now && then && now.bytesSent > then.bytesSent;
        }),
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
    const table = await studio.locator('#stats tbody tr[data-kind="video"]').count();
    assert.equal(table, 3, '#stats shows one row per video rid');

    const admin = await waitFor(
      'admin API: status live with 3 video layers',
      () => server.api('GET', `/api/v1/streams/${stream.id}`),
      (r) => r.body?.status === 'live' && videoLayersOf(r.body)?.length === 3,
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
    assert.deepEqual(
      videoLayersOf(admin.body)
        .map((l) => l.layer ?? l.rid)
        .sort(),
      ['f', 'h', 'q'],
    );
  });

  step('c. the early viewer starts playing when the stream goes live', async () => {
    assert.ok(studio, 'needs step a (studio live)');
    const page = viewers.early;
    await waitStatus(page, 'playing', 'early viewer');
    await waitFor(
      'early viewer framesDecoded to grow',
      () => inboundStats(page),
      (s) => s.video && s.video.framesDecoded > 30,
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
  });

  step('b. viewers get the layer they ask for, and audible audio', async () => {
    assert.ok(studio, 'needs step a (studio live)');
    const pinned = await openWatch('pinned-q', '?layer=q');
    const unpinned = await openWatch('unpinned', '');
    assert.equal(await pinned.inputValue('#layer'), 'q', '#layer from ?layer=q');
    assert.equal(await unpinned.inputValue('#layer'), 'auto');

    await waitStatus(pinned, 'playing', '?layer=q viewer');
    await waitDecoding(pinned, 320, '?layer=q viewer');
    await waitStatus(unpinned, 'playing', 'unpinned viewer');
    await waitDecoding(unpinned, 1280, 'unpinned viewer');

    for (const [name, page] of [
      ['?layer=q viewer', pinned],
      ['unpinned viewer', unpinned],
    ]) {
      // Chromium computes totalAudioEnergy at playout, and a muted element plays nothing.
      await page.click('#unmute');
      assert.equal(await page.evaluate(() => document.getElementById('player').muted), false);
      const first = await waitFor(
        `${name}: audio packets arriving`,
        () => inboundStats(page),
        (s) => s.audio && s.audio.packetsReceived > 0,
        { timeoutMs: MEDIA_TIMEOUT_MS },
      );
      await waitFor(
        `${name}: audio packetsReceived growing and totalAudioEnergy > 0`,
        () => inboundStats(page),
        (s) =>
          s.audio?.packetsReceived > first.audio.packetsReceived && s.audio.totalAudioEnergy > 0,
        { timeoutMs: MEDIA_TIMEOUT_MS },
      );
    }
  });

  step('e. switching #layer from auto to q on a playing page ends up at 320 wide', async () => {
    assert.ok(studio, 'needs step a (studio live)');
    const page = viewers.early;
    await waitDecoding(page, 1280, 'early viewer (auto) before the switch');
    await page.selectOption('#layer', 'q');
    await waitDecoding(page, 320, 'early viewer after choosing q');
    assert.equal(await statusText(page), 'playing');
  });

  step('d. stopping the publisher ends the stream for every viewer', async () => {
    assert.ok(studio, 'needs step a (studio live)');
    await studio.click('#stop');
    await waitFor('studio #status "idle"', () => statusText(studio), (s) => s === 'idle');
    await waitFor(
      'public status "idle" after stop',
      () => server.api('GET', `/api/v1/streams/${stream.id}/status`, { admin: false }),
      (r) => r.body?.status === 'idle',
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
    const admin = await server.api('GET', `/api/v1/streams/${stream.id}`);
    assert.equal(admin.body?.status, 'idle', `admin status after stop: ${JSON.stringify(admin)}`);
    for (const [name, page] of Object.entries(viewers)) {
      await waitStatus(page, 'ended', `${name} viewer`);
    }
  });
});
