// RTMP in, WebRTC out, in real Chromium: Debian's ffmpeg publishes a 640x360 30 fps test
// pattern (H.264, libx264) and a 440 Hz tone (AAC) over RTMP, as OBS would; the watch page
// plays it over WHEP. Without B-frames greenroom re-packetizes the H.264, with B-frames it
// re-encodes it; AAC always becomes Opus. A publisher that drops and comes back is picked up
// by the same page on the same peer connection.
//
// One server and one browser for the file; every test has its own stream, watch page and
// ffmpeg, and kills its ffmpeg whatever happens. Jitter-buffer and decode-time figures are
// logged (`[rtmp] …`), not asserted.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';

import {
  Greenroom,
  keepIceOnLoopback,
  launchChromium,
  spawnTracked,
  statusText,
  stopChild,
  waitFor,
} from './harness.js';

const MEDIA_TIMEOUT_MS = 60_000;
const TEST_TIMEOUT_MS = 300_000;
const SOURCE_FPS = 30;
const SOURCE_WIDTH = 640;
const WINDOW_MS = 5_000;
/** Share of the source frame rate the page must decode over the window. */
const MIN_FPS_SHARE = 0.8;
/** Frames Chromium may drop over the window (of 150). */
const MAX_DROPPED_IN_WINDOW = 15;

/** ffmpeg arguments for an endless RTMP publish of the test pattern and tone. */
function ffmpegArgs(url, bFrames) {
  return [
    '-hide_banner',
    '-loglevel',
    'warning',
    '-nostdin',
    '-re',
    '-f',
    'lavfi',
    '-i',
    `testsrc2=size=640x360:rate=${SOURCE_FPS}`,
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440:sample_rate=48000',
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-g',
    '30',
    '-bf',
    String(bFrames),
    '-pix_fmt',
    'yuv420p',
    '-c:a',
    'aac',
    '-f',
    'flv',
    url,
  ];
}

/**
 * Everything the RTMP tests read from a watch page's peer connection: inbound video and audio
 * (with the negotiated codec and the jitter-buffer and decode counters), the connection state
 * and whether `window.greenroom.pc` is still the peer connection tagged by `tagPc`.
 */
function inboundDetail(page) {
  return page.evaluate(async () => {
    const pc = window.greenroom && window.greenroom.pc;
    if (!pc) return { connectionState: 'none', samePc: false, video: null, audio: null };
    const report = await pc.getStats();
    let video = null;
    let audio = null;
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      const codec = s.codecId && report.get(s.codecId);
      const common = {
        timestamp: s.timestamp,
        codec: codec ? codec.mimeType : null,
        packetsReceived: s.packetsReceived || 0,
        packetsLost: s.packetsLost || 0,
        jitterBufferDelay: s.jitterBufferDelay || 0,
        jitterBufferEmittedCount: s.jitterBufferEmittedCount || 0,
        jitterBufferTargetDelay: s.jitterBufferTargetDelay || 0,
      };
      if (s.kind === 'video') {
        video = {
          ...common,
          frameWidth: s.frameWidth || 0,
          frameHeight: s.frameHeight || 0,
          framesReceived: s.framesReceived || 0,
          framesDecoded: s.framesDecoded || 0,
          keyFramesDecoded: s.keyFramesDecoded || 0,
          framesDropped: s.framesDropped || 0,
          framesPerSecond: s.framesPerSecond || 0,
          totalDecodeTime: s.totalDecodeTime || 0,
          freezeCount: s.freezeCount || 0,
          totalFreezesDuration: s.totalFreezesDuration || 0,
          nackCount: s.nackCount || 0,
          pliCount: s.pliCount || 0,
          firCount: s.firCount || 0,
        };
      } else if (s.kind === 'audio') {
        audio = {
          ...common,
          totalAudioEnergy: s.totalAudioEnergy || 0,
          audioLevel: s.audioLevel || 0,
          totalSamplesReceived: s.totalSamplesReceived || 0,
          concealedSamples: s.concealedSamples || 0,
        };
      }
    });
    return {
      connectionState: pc.connectionState,
      samePc: window.__rtmpTest ? window.__rtmpTest.pc === pc : null,
      pcStates: window.__rtmpTest ? window.__rtmpTest.pcStates.slice() : null,
      video,
      audio,
    };
  });
}

/** Remembers the page's current peer connection and records its state changes from now on. */
function tagPc(page) {
  return page.evaluate(() => {
    const pc = window.greenroom.pc;
    const tag = { pc, pcStates: [] };
    pc.addEventListener('connectionstatechange', () => tag.pcStates.push(pc.connectionState));
    window.__rtmpTest = tag;
    return pc.connectionState;
  });
}

/** Records every value `#status` takes from now on (read back with `statusHistory`). */
function watchStatusHistory(page) {
  return page.evaluate(() => {
    const el = document.getElementById('status');
    const seen = [el.textContent];
    new MutationObserver(() => {
      if (seen[seen.length - 1] !== el.textContent) seen.push(el.textContent);
    }).observe(el, { childList: true, characterData: true, subtree: true });
    window.__statusHistory = seen;
  });
}

function statusHistory(page) {
  return page.evaluate(() => (window.__statusHistory || []).slice());
}

const ms = (seconds) => Math.round(seconds * 1000 * 100) / 100;

/** Jitter-buffer and decode figures between two inbound snapshots (and cumulative at `b`). */
function figures(a, b) {
  const perItem = (x, y, sum, count) =>
    y[count] > x[count] ? ms((y[sum] - x[sum]) / (y[count] - x[count])) : null;
  const cumulative = (y, sum, count) => (y[count] > 0 ? ms(y[sum] / y[count]) : null);
  return {
    videoJitterBufferMs: perItem(a.video, b.video, 'jitterBufferDelay', 'jitterBufferEmittedCount'),
    audioJitterBufferMs: perItem(a.audio, b.audio, 'jitterBufferDelay', 'jitterBufferEmittedCount'),
    decodeMsPerFrame: perItem(a.video, b.video, 'totalDecodeTime', 'framesDecoded'),
    cumulative: {
      videoJitterBufferMs: cumulative(b.video, 'jitterBufferDelay', 'jitterBufferEmittedCount'),
      audioJitterBufferMs: cumulative(b.audio, 'jitterBufferDelay', 'jitterBufferEmittedCount'),
      videoJitterBufferTargetMs: cumulative(
        b.video,
        'jitterBufferTargetDelay',
        'jitterBufferEmittedCount',
      ),
      audioJitterBufferTargetMs: cumulative(
        b.audio,
        'jitterBufferTargetDelay',
        'jitterBufferEmittedCount',
      ),
      decodeMsPerFrame: cumulative(b.video, 'totalDecodeTime', 'framesDecoded'),
    },
  };
}

describe('RTMP publisher (ffmpeg) to the watch page', () => {
  let server;
  let browser;
  let context;
  const publishers = new Set(); // ffmpeg children still running

  before(async () => {
    server = await Greenroom.start();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await keepIceOnLoopback(context);
  });

  after(async () => {
    for (const child of publishers) await stopChild(child);
    if (browser) await browser.close().catch(() => {});
    if (server) await server.stop();
  });

  function startFfmpeg(url, bFrames, name) {
    const logFile = path.join(server.dataDir, `ffmpeg-${name}.log`);
    const child = spawnTracked('ffmpeg', ffmpegArgs(url, bFrames), { logFile });
    child.logFile = logFile;
    publishers.add(child);
    return child;
  }

  async function stopFfmpeg(child) {
    if (!child) return;
    await stopChild(child);
    publishers.delete(child);
  }

  function ffmpegLogTail(child) {
    try {
      const lines = fs.readFileSync(child.logFile, 'utf8').trimEnd().split('\n');
      return lines.slice(-15).join('\n') || '(empty)';
    } catch {
      return '(no log)';
    }
  }

  /**
   * A test with the server log and the ffmpeg logs appended to its failure; its ffmpeg
   * processes (registered through `ctx.ffmpeg`) and pages are stopped whatever happens.
   */
  const test = (name, fn) =>
    it(name, { timeout: TEST_TIMEOUT_MS }, async () => {
      const ctx = { children: [], pages: [] };
      ctx.ffmpeg = (url, bFrames, label) => {
        const child = startFfmpeg(url, bFrames, label);
        ctx.children.push(child);
        return child;
      };
      ctx.page = async (label) => {
        const page = await context.newPage();
        page.on('pageerror', (err) => console.error(`[${label}] page error: ${err.message}`));
        ctx.pages.push(page);
        return page;
      };
      try {
        await fn(ctx);
      } catch (err) {
        for (const child of ctx.children) {
          err.message += `\n--- ffmpeg (${path.basename(child.logFile)}, exit ${JSON.stringify(
            child.exited,
          )}) ---\n${ffmpegLogTail(child)}`;
        }
        if (server) {
          err.message += `\n--- greenroom log (tail) ---\n${server.logTail(40)}`;
          if (process.env.GREENROOM_KEEP_DATA) err.message += `\n(full log: ${server.logFile})`;
        }
        throw err;
      } finally {
        for (const child of ctx.children) await stopFfmpeg(child);
        for (const page of ctx.pages) await page.close().catch(() => {});
      }
    });

  async function createRtmpStream(title) {
    const stream = await server.createStream(title);
    assert.match(
      stream.rtmp_url ?? '',
      /^rtmp:\/\/127\.0\.0\.1:\d+\/live\/.+/,
      `rtmp_url in the stream JSON: ${JSON.stringify(stream)}`,
    );
    assert.ok(stream.rtmp_url.endsWith(`/${stream.stream_key}`), 'rtmp_url ends with the key');
    return stream;
  }

  function waitApiStatus(stream, want) {
    return waitFor(
      `admin API status "${want}"`,
      () => server.api('GET', `/api/v1/streams/${stream.id}`),
      (r) => r.body?.status === want,
      { timeoutMs: MEDIA_TIMEOUT_MS, intervalMs: 250 },
    );
  }

  function waitPageStatus(page, accept, what) {
    return waitFor(`${what}`, () => statusText(page), accept, { timeoutMs: MEDIA_TIMEOUT_MS });
  }

  /** Waits until the page decodes 640-wide H.264 and frames keep coming. */
  async function waitDecoding640(page, what, after = 0) {
    const first = await waitFor(
      `${what}: 640-wide H.264 decoded (framesDecoded > ${after})`,
      () => inboundDetail(page),
      (s) => s.video?.frameWidth === SOURCE_WIDTH && s.video.framesDecoded > after,
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
    assert.equal(first.video.codec, 'video/H264', `${what}: inbound codec ${JSON.stringify(first)}`);
    assert.equal(first.video.frameHeight, 360, `${what}: frame height`);
    return waitFor(
      `${what}: framesDecoded growing past ${first.video.framesDecoded + 30}`,
      () => inboundDetail(page),
      (s) => s.video?.framesDecoded > first.video.framesDecoded + 30,
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
  }

  /**
   * Two snapshots `WINDOW_MS` apart (by the stats' own timestamps): the source frame rate is
   * reached with few drops. Returns both snapshots.
   */
  async function measureWindow(page, what) {
    const a = await inboundDetail(page);
    await sleep(WINDOW_MS);
    let b = await inboundDetail(page);
    while (b.video.timestamp - a.video.timestamp < WINDOW_MS) {
      await sleep(100);
      b = await inboundDetail(page);
    }
    const seconds = (b.video.timestamp - a.video.timestamp) / 1000;
    const decoded = b.video.framesDecoded - a.video.framesDecoded;
    const received = b.video.framesReceived - a.video.framesReceived;
    const dropped = b.video.framesDropped - a.video.framesDropped;
    const want = Math.ceil(seconds * SOURCE_FPS * MIN_FPS_SHARE);
    const seen = JSON.stringify({ seconds, decoded, received, dropped, a: a.video, b: b.video });
    console.log(
      `[rtmp] ${what}: ${decoded} frames decoded in ${seconds.toFixed(2)} s ` +
        `(${(decoded / seconds).toFixed(1)} fps; received ${received}, dropped ${dropped})`,
    );
    assert.ok(
      decoded >= want,
      `${what}: ${decoded} frames decoded in ${seconds} s, want >= ${want} (${SOURCE_FPS} fps x ${MIN_FPS_SHARE}): ${seen}`,
    );
    assert.ok(
      dropped <= MAX_DROPPED_IN_WINDOW,
      `${what}: ${dropped} frames dropped in ${seconds} s (max ${MAX_DROPPED_IN_WINDOW}): ${seen}`,
    );
    assert.equal(b.video.frameWidth, SOURCE_WIDTH, `${what}: still 640 wide: ${seen}`);
    return { a, b };
  }

  /** After `#unmute`: audio packets keep arriving and the tone has energy at playout. */
  async function checkAudio(page, what) {
    await page.click('#unmute');
    assert.equal(
      await page.evaluate(() => document.getElementById('player').muted),
      false,
      `${what}: player unmuted`,
    );
    const first = await waitFor(
      `${what}: Opus audio packets arriving`,
      () => inboundDetail(page),
      (s) => s.audio?.packetsReceived > 0,
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
    assert.equal(first.audio.codec, 'audio/opus', `${what}: audio codec ${JSON.stringify(first)}`);
    await waitFor(
      `${what}: audio packetsReceived growing past ${first.audio.packetsReceived} and totalAudioEnergy > 0`,
      () => inboundDetail(page),
      (s) =>
        s.audio?.packetsReceived > first.audio.packetsReceived + 50 &&
        s.audio.totalAudioEnergy > 0,
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
  }

  async function playsAtSourceRate(ctx, bFrames, wantVideo) {
    const label = `bf${bFrames}`;
    const stream = await createRtmpStream(`rtmp -bf ${bFrames}`);
    ctx.ffmpeg(stream.rtmp_url, bFrames, label);
    await waitApiStatus(stream, 'live');

    const page = await ctx.page(label);
    await page.goto(`${server.baseUrl}/watch/${stream.id}`);
    await waitPageStatus(page, (s) => s === 'playing', `${label} watch page #status "playing"`);
    await waitDecoding640(page, `${label} watch page`);

    const source = (
      await waitFor(
        `${label}: publisher.source.video "${wantVideo}"`,
        () => server.api('GET', `/api/v1/streams/${stream.id}`),
        (r) => r.body?.publisher?.source?.video === wantVideo,
        { timeoutMs: MEDIA_TIMEOUT_MS, intervalMs: 250 },
      )
    ).body.publisher.source;
    assert.equal(source.protocol, 'rtmp', `${label}: source ${JSON.stringify(source)}`);
    assert.equal(source.audio, 'transcoded', `${label}: source ${JSON.stringify(source)}`);
    console.log(`[rtmp] ${label}: publisher.source = ${JSON.stringify(source)}`);

    await checkAudio(page, `${label} watch page`);
    const { a, b } = await measureWindow(page, `${label} watch page`);
    assert.equal(b.connectionState, 'connected');
    console.log(`[rtmp] ${label}: figures = ${JSON.stringify(figures(a, b))}`);
    console.log(
      `[rtmp] ${label}: video totals = ${JSON.stringify({
        framesReceived: b.video.framesReceived,
        framesDecoded: b.video.framesDecoded,
        framesDropped: b.video.framesDropped,
        keyFramesDecoded: b.video.keyFramesDecoded,
        freezeCount: b.video.freezeCount,
        totalFreezesDuration: b.video.totalFreezesDuration,
        packetsLost: b.video.packetsLost,
        nackCount: b.video.nackCount,
        pliCount: b.video.pliCount,
        audioPacketsLost: b.audio.packetsLost,
        audioConcealedSamples: b.audio.concealedSamples,
        audioTotalSamplesReceived: b.audio.totalSamplesReceived,
      })}`,
    );
  }

  test('H.264 without B-frames is re-packetized and plays at the source rate', (ctx) =>
    playsAtSourceRate(ctx, 0, 'repacketized'));

  test('H.264 with B-frames is re-encoded and plays at the source rate', (ctx) =>
    playsAtSourceRate(ctx, 2, 'transcoded'));

  test('a restarted publisher plays again on the same page and peer connection', async (ctx) => {
    const stream = await createRtmpStream('rtmp restart');
    const page = await ctx.page('restart');
    await page.goto(`${server.baseUrl}/watch/${stream.id}`);
    await waitPageStatus(page, (s) => s === 'waiting', 'watch page #status "waiting" before live');
    await watchStatusHistory(page);

    let first = ctx.ffmpeg(stream.rtmp_url, 0, 'restart-1');
    await waitApiStatus(stream, 'live');
    await waitPageStatus(page, (s) => s === 'playing', 'watch page #status "playing"');
    await waitDecoding640(page, 'before the restart');
    assert.equal(await tagPc(page), 'connected', 'connectionState before the restart');
    const { a: beforeA, b: beforeB } = await measureWindow(page, 'before the restart');
    console.log(`[rtmp] restart, first publish: figures = ${JSON.stringify(figures(beforeA, beforeB))}`);

    // The publisher drops (no RTMP deleteStream: the TCP connection just goes away).
    await stopFfmpeg(first);
    first = null;
    await waitApiStatus(stream, 'idle');
    const gap = await waitPageStatus(
      page,
      (s) => s === 'ended' || s === 'waiting',
      'watch page #status "ended" or "waiting" after the publisher dropped',
    );
    console.log(`[rtmp] restart: page status while the publisher is gone = ${gap}`);
    const during = await inboundDetail(page);
    assert.equal(during.samePc, true, 'window.greenroom.pc is the same RTCPeerConnection');
    assert.equal(during.connectionState, 'connected', `while off air: ${JSON.stringify(during)}`);

    // A few seconds off air, then the same URL again.
    await sleep(3000);
    const stalled = await inboundDetail(page);
    ctx.ffmpeg(stream.rtmp_url, 0, 'restart-2');
    await waitApiStatus(stream, 'live');
    await waitPageStatus(page, (s) => s === 'playing', 'watch page #status "playing" again');
    const resumed = await waitDecoding640(
      page,
      'after the restart',
      stalled.video.framesDecoded,
    );
    assert.equal(resumed.samePc, true, 'window.greenroom.pc is still the same RTCPeerConnection');
    assert.equal(resumed.connectionState, 'connected', 'connectionState after the restart');
    assert.deepEqual(
      resumed.pcStates,
      [],
      `the peer connection's state never changed: ${JSON.stringify(resumed.pcStates)}`,
    );
    assert.ok(
      resumed.video.keyFramesDecoded > stalled.video.keyFramesDecoded,
      `keyframes of the new publisher decoded: ${JSON.stringify({ stalled: stalled.video, resumed: resumed.video })}`,
    );
    const { a, b } = await measureWindow(page, 'after the restart');
    console.log(`[rtmp] restart, second publish: figures = ${JSON.stringify(figures(a, b))}`);
    const history = await statusHistory(page);
    console.log(`[rtmp] restart: #status history = ${history.join(' → ')}`);
    assert.deepEqual(
      history.slice(-3),
      ['playing', gap, 'playing'],
      `#status history: ${history.join(' → ')}`,
    );
  });
});
