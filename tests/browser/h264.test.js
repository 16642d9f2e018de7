// H.264 end to end, in real Chromium: the studio page publishes the fake camera (1280x720,
// 3 simulcast layers) with the video codec set to H.264; watch pages play it over WHEP and must
// decode H.264 at the layer they ask for.
//
// The steps share one server, one browser and one stream and run in order; a step that needs
// an earlier one to have worked says so in its failure message.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  Greenroom,
  keepIceOnLoopback,
  launchChromium,
  outboundStats,
  statusText,
  videoLayersOf,
  waitFor,
} from './harness.js';

const MEDIA_TIMEOUT_MS = 45_000;
const STEP_TIMEOUT_MS = 240_000;

/**
 * Inbound video stats of a watch page, with what it takes to tell a forwarding fault from a
 * decoding one, and the negotiated codec.
 */
function inboundVideo(page) {
  return page.evaluate(async () => {
    const pc = window.greenroom && window.greenroom.pc;
    if (!pc) return { connectionState: 'none', video: null };
    const report = await pc.getStats();
    let video = null;
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
      const codec = s.codecId && report.get(s.codecId);
      video = {
        codec: codec ? codec.mimeType : null,
        sdpFmtpLine: codec ? codec.sdpFmtpLine || '' : null,
        frameWidth: s.frameWidth || 0,
        frameHeight: s.frameHeight || 0,
        framesReceived: s.framesReceived || 0,
        framesDecoded: s.framesDecoded || 0,
        keyFramesDecoded: s.keyFramesDecoded || 0,
        framesDropped: s.framesDropped || 0,
        packetsReceived: s.packetsReceived || 0,
        packetsLost: s.packetsLost || 0,
        nackCount: s.nackCount || 0,
        pliCount: s.pliCount || 0,
        firCount: s.firCount || 0,
      };
    });
    return { connectionState: pc.connectionState, video };
  });
}

describe('H.264 live stream through the studio and watch pages', () => {
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

  async function openWatch(name, query) {
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error(`[${name}] page error: ${err.message}`));
    await page.goto(`${server.baseUrl}/watch/${stream.id}${query}`);
    viewers[name] = page;
    return page;
  }

  /** Waits until a watch page decodes H.264 `width` wide, then checks frames keep coming. */
  async function waitDecodingH264(page, width, what) {
    const first = await waitFor(
      `${what} to decode ${width}-wide H.264 video`,
      () => inboundVideo(page),
      (s) => s.video?.frameWidth === width && s.video.framesDecoded > 0,
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
    assert.equal(first.video.codec, 'video/H264', `${what} inbound codec: ${JSON.stringify(first)}`);
    assert.match(first.video.sdpFmtpLine, /packetization-mode=1/, `${what} inbound codec fmtp`);
    await waitFor(
      `${what} framesDecoded to grow past ${first.video.framesDecoded} at ${width} wide`,
      () => inboundVideo(page),
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
    stream = await server.createStream('browser test, H.264');
  });

  after(async () => {
    if (browser) await browser.close().catch(() => {});
    if (server) await server.stop();
  });

  step('this Chromium can send H.264 (packetization-mode=1)', async () => {
    const page = await context.newPage();
    try {
      await page.goto(`${server.baseUrl}/studio/${stream.id}`);
      const codecs = await page.evaluate(() =>
        RTCRtpSender.getCapabilities('video').codecs.map((c) =>
          `${c.mimeType} ${c.sdpFmtpLine || ''}`.trim(),
        ),
      );
      assert.ok(
        codecs.some((c) => c.startsWith('video/H264') && c.includes('packetization-mode=1')),
        `RTCRtpSender.getCapabilities('video') has no H.264 packetization-mode=1:\n${codecs.join('\n')}`,
      );
    } finally {
      await page.close();
    }
  });

  step('a studio whose browser cannot send H.264 says so and posts nothing', async () => {
    const page = await context.newPage();
    try {
      // This browser minus its H.264 encoder.
      await page.addInitScript(() => {
        const original = RTCRtpSender.getCapabilities.bind(RTCRtpSender);
        RTCRtpSender.getCapabilities = (kind) => {
          const caps = original(kind);
          if (!caps) return caps;
          return { ...caps, codecs: caps.codecs.filter((c) => c.mimeType !== 'video/H264') };
        };
      });
      let posted = 0;
      page.on('request', (r) => {
        if (r.url().includes('/whip/') && r.method() === 'POST') posted++;
      });
      await page.goto(`${server.baseUrl}/studio/${stream.id}#key=${stream.stream_key}`);
      await page.selectOption('#codec', 'h264');
      await page.click('#golive');
      const shown = await waitFor(
        'studio #status "error: …"',
        () => statusText(page),
        (s) => s.startsWith('error'),
        { timeoutMs: MEDIA_TIMEOUT_MS },
      );
      assert.equal(shown, 'error: this browser cannot send H.264 video');
      assert.equal(posted, 0, 'no WHIP offer sent');
      assert.equal(await page.isDisabled('#golive'), false, '#golive usable again');
    } finally {
      await page.close();
    }
  });

  step('the studio publishes 1280x720 in 3 simulcast layers of H.264', async () => {
    studio = await context.newPage();
    studio.on('pageerror', (err) => console.error(`[studio] page error: ${err.message}`));
    await studio.goto(`${server.baseUrl}/studio/${stream.id}#key=${stream.stream_key}`);
    assert.equal(await studio.inputValue('#codec'), 'vp8', '#codec defaults to VP8');
    await studio.selectOption('#codec', 'h264');
    assert.equal(await studio.isChecked('#simulcast'), true, '#simulcast checked by default');

    await studio.click('#golive');
    await waitFor(
      'studio #status "live"',
      () => statusText(studio),
      (s) => s === 'live' || s.startsWith('error'),
      { timeoutMs: MEDIA_TIMEOUT_MS },
    ).then((s) => assert.equal(s, 'live', 'studio #status after Go live'));
    assert.equal(await studio.isDisabled('#codec'), true, '#codec locked while live');

    // The offer names H.264 (and its rtx) only, packetization-mode=1 42e01f first.
    const offered = await studio.evaluate(() => {
      const sdp = window.greenroom.pc.localDescription.sdp;
      const section = sdp.split(/\r\nm=/).find((m) => m.startsWith('video'));
      const types = section.split('\r\n')[0].split(' ').slice(3);
      const rtpmap = Object.fromEntries(
        [...section.matchAll(/a=rtpmap:(\d+) ([^/\r]+)/g)].map((m) => [m[1], m[2]]),
      );
      const fmtp = Object.fromEntries(
        [...section.matchAll(/a=fmtp:(\d+) ([^\r]+)/g)].map((m) => [m[1], m[2]]),
      );
      return types.map((pt) => ({ name: rtpmap[pt], fmtp: fmtp[pt] || '' }));
    });
    assert.deepEqual(
      [...new Set(offered.map((c) => c.name))].sort(),
      ['H264', 'rtx'],
      `video codecs offered: ${JSON.stringify(offered)}`,
    );
    assert.match(offered[0].fmtp, /packetization-mode=1/, `first offered: ${offered[0].fmtp}`);
    assert.match(offered[0].fmtp, /profile-level-id=42e01f/, `first offered: ${offered[0].fmtp}`);

    const settings = await studio.evaluate(() => {
      const sender = window.greenroom.pc.getSenders().find((s) => s.track?.kind === 'video');
      return sender.track.getSettings();
    });
    assert.equal(`${settings.width}x${settings.height}`, '1280x720', 'captured camera size');

    const sending = (s) => s.video.filter((v) => v.rid && v.bytesSent > 0);
    const first = await waitFor(
      'studio getStats: 3 outbound H.264 rids sending, f at 1280 wide',
      () => outboundStats(studio),
      (s) =>
        sending(s).length === 3 &&
        s.video.every((v) => v.codec === 'video/H264') &&
        s.video.some((v) => v.rid === 'f' && v.frameWidth === 1280),
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

    // greenroom forwards H.264 in packetization-mode=1 only; every layer must have negotiated it.
    const sent = await studio.evaluate(async () => {
      const report = await window.greenroom.pc.getStats();
      const rows = [];
      report.forEach((s) => {
        if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
        const codec = s.codecId && report.get(s.codecId);
        rows.push({ rid: s.rid, mimeType: codec?.mimeType, fmtp: codec?.sdpFmtpLine || '' });
      });
      return rows;
    });
    for (const layer of sent) {
      assert.equal(layer.mimeType, 'video/H264', `layer ${layer.rid}: ${JSON.stringify(layer)}`);
      assert.match(layer.fmtp, /packetization-mode=1/, `layer ${layer.rid}: ${layer.fmtp}`);
    }

    // The stats table names the codec of every layer.
    const table = await waitFor(
      '#stats: one H264 row per video rid',
      () =>
        studio.$$eval('#stats tbody tr[data-kind="video"]', (rows) =>
          rows.map((r) => ({ rid: r.dataset.rid, codec: r.cells[4].textContent })),
        ),
      (rows) => rows.length === 3 && rows.every((r) => r.codec === 'H264'),
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
    assert.deepEqual(
      table.map((r) => r.rid),
      ['q', 'h', 'f'],
    );
  });

  step('the admin API reports an H.264 video track with 3 layers', async () => {
    assert.ok(studio, 'needs the studio to be live');
    const admin = await waitFor(
      'admin API: status live, video track video/H264 with 3 layers',
      () => server.api('GET', `/api/v1/streams/${stream.id}`),
      (r) =>
        r.body?.status === 'live' &&
        r.body.publisher?.tracks?.some((t) => t.kind === 'video' && t.codec === 'video/H264') &&
        videoLayersOf(r.body)?.length === 3,
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
    const video = admin.body.publisher.tracks.find((t) => t.kind === 'video');
    assert.equal(video.codec, 'video/H264');
    assert.deepEqual(
      video.layers.map((l) => l.layer ?? l.rid).sort(),
      ['f', 'h', 'q'],
      `layers: ${JSON.stringify(video.layers)}`,
    );
  });

  step('viewers decode H.264 at the layer they ask for', async () => {
    assert.ok(studio, 'needs the studio to be live');
    const pinned = await openWatch('pinned-q', '?layer=q');
    const unpinned = await openWatch('unpinned', '');
    assert.equal(await pinned.inputValue('#layer'), 'q', '#layer from ?layer=q');
    assert.equal(await unpinned.inputValue('#layer'), 'auto');

    await waitDecodingH264(pinned, 320, '?layer=q viewer');
    await waitDecodingH264(unpinned, 1280, 'unpinned viewer');
    for (const [name, page] of [
      ['?layer=q viewer', pinned],
      ['unpinned viewer', unpinned],
    ]) {
      await waitFor(`${name} #status "playing"`, () => statusText(page), (s) => s === 'playing', {
        timeoutMs: MEDIA_TIMEOUT_MS,
      });
    }
  });

  step('switching #layer on playing pages moves H.264 viewers between layers', async () => {
    assert.ok(viewers['pinned-q'] && viewers.unpinned, 'needs the viewers of the previous step');
    await viewers['pinned-q'].selectOption('#layer', 'f');
    await viewers.unpinned.selectOption('#layer', 'q');
    await waitDecodingH264(viewers['pinned-q'], 1280, 'first viewer after choosing f');
    await waitDecodingH264(viewers.unpinned, 320, 'second viewer after choosing q');
  });

  step('stopping the publisher ends the stream', async () => {
    assert.ok(studio, 'needs the studio to be live');
    await studio.click('#stop');
    await waitFor('studio #status "idle"', () => statusText(studio), (s) => s === 'idle');
    await waitFor(
      'public status "idle" after stop',
      () => server.api('GET', `/api/v1/streams/${stream.id}/status`, { admin: false }),
      (r) => r.body?.status === 'idle',
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
    for (const [name, page] of Object.entries(viewers)) {
      await waitFor(`${name} #status "ended"`, () => statusText(page), (s) => s === 'ended', {
        timeoutMs: MEDIA_TIMEOUT_MS,
      });
    }
  });
});
