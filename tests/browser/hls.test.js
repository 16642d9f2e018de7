// HLS out, in real Chromium with hls.js: every live stream gets an HLS ladder (LL-HLS parts,
// blocking reload, program date-times) and, once its publisher stops, a replay.
//
// - An RTMP publisher (Debian's ffmpeg: 1920x1080 30 fps test pattern, H.264 with B-frames,
//   AAC tone) gets 1080p (passed through), 720p, 480p and 360p; hls.js plays it in low-latency
//   mode and switches between the top and bottom levels on demand.
// - When ffmpeg stops, the recording becomes a replay that hls.js plays and seeks in.
// - A WHIP publisher (the studio page, fake camera 1280x720, VP8) gets 720p, 480p and 360p.
//
// The player is a tiny page served by this file from 127.0.0.1 on its own port, so every HLS
// request is cross-origin (the server answers with CORS `*`). One server and one browser for
// the file; the steps run in order and a step that needs an earlier one says so. Latency
// figures (`[hls] …`) are logged, not asserted.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';

import {
  Greenroom,
  freeTcpPort,
  keepIceOnLoopback,
  launchChromium,
  outboundStats,
  spawnTracked,
  statusText,
  stopChild,
  waitFor,
} from './harness.js';

const MEDIA_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 180_000;
const SOURCE_FPS = 30;
/** How long the latency is sampled for, and how often. */
const LATENCY_WINDOW_MS = 5_000;
const LATENCY_SAMPLE_MS = 250;

const HLS_JS = createRequire(import.meta.url).resolve('hls.js/dist/hls.min.js');

/** s3s-fs (an S3-compatible server that checks signatures), from scripts/install-test-tools.sh. */
const S3S_FS =
  process.env.GREENROOM_S3S_FS ||
  path.join(os.homedir(), '.cache', 'greenroom-tools', 'bin', 's3s-fs');
const S3_BUCKET = 'replays';
const S3_ACCESS = 'greenroombrowser';
const S3_SECRET = 'greenroombrowsersecret42';

/** Starts s3s-fs on a free port over a fresh directory holding the bucket. */
async function startS3() {
  assert.ok(fs.existsSync(S3S_FS), `s3s-fs not found at ${S3S_FS}: run scripts/install-test-tools.sh`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'greenroom-s3-'));
  fs.mkdirSync(path.join(root, S3_BUCKET));
  const port = await freeTcpPort();
  const child = spawnTracked(S3S_FS, [
    '--host', '127.0.0.1', '--port', String(port),
    '--access-key', S3_ACCESS, '--secret-key', S3_SECRET, root,
  ]);
  await waitFor(
    's3s-fs listening',
    () => fetch(`http://127.0.0.1:${port}/`).then((r) => r.status).catch(() => null),
    (status) => status !== null,
    { timeoutMs: 10_000, intervalMs: 100 },
  );
  return { child, root, port };
}

/** Files under `dir`, recursively. */
function filesUnder(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)],
  );
}

/** ffmpeg arguments for an endless RTMP publish of a 1080p test pattern and tone. */
function ffmpegArgs(url) {
  return [
    '-hide_banner',
    '-loglevel',
    'warning',
    '-nostdin',
    '-re',
    '-f',
    'lavfi',
    '-i',
    `testsrc2=size=1920x1080:rate=${SOURCE_FPS}`,
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440:sample_rate=48000',
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-g',
    '60',
    '-bf',
    '2',
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
 * The player page: hls.js on a muted <video>, driven through `window.play(url, {lowLatency})`,
 * `window.setLevel(i)`, `window.seek(t)`, `window.stop()` and read through `window.snapshot()`.
 */
const PLAYER_HTML = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>hls.js player</title></head>
<body>
<video id="video" muted autoplay playsinline width="640" height="360"></video>
<script src="/hls.min.js"></script>
<script>
'use strict';
const video = document.getElementById('video');
const state = { hls: null, errors: [], switched: [], fatal: null, seeked: 0 };
window.player = state;
video.addEventListener('seeked', () => state.seeked++);

function keep(list, item) {
  list.push(item);
  if (list.length > 30) list.shift();
}

window.supports = () => ({
  version: Hls.version,
  isSupported: Hls.isSupported(),
  h264Aac: MediaSource.isTypeSupported('video/mp4; codecs="avc1.64002a,mp4a.40.2"'),
});

// Resolves with a snapshot once the manifest is parsed; rejects on a fatal error before.
window.play = (url, { lowLatency }) =>
  new Promise((resolve, reject) => {
    window.stop();
    state.errors = [];
    state.switched = [];
    state.fatal = null;
    const hls = new Hls({ lowLatencyMode: lowLatency, backBufferLength: 30 });
    state.hls = hls;
    hls.on(Hls.Events.ERROR, (_, d) => {
      const e = {
        type: d.type,
        details: d.details,
        fatal: d.fatal,
        url: d.url || (d.frag && d.frag.url) || (d.context && d.context.url) || null,
        code: d.response ? d.response.code : null,
        reason: d.reason || (d.error ? String(d.error.message || d.error) : null),
      };
      keep(state.errors, e);
      if (d.fatal) {
        state.fatal = e;
        reject(new Error('hls.js fatal error: ' + JSON.stringify(e)));
      }
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => state.switched.push(d.level));
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      video.play().catch((err) => keep(state.errors, { type: 'play()', details: String(err) }));
      resolve(window.snapshot());
    });
    hls.attachMedia(video);
    hls.loadSource(url);
  });

window.setLevel = (index) => {
  state.hls.currentLevel = index;
};

window.seek = (seconds) => {
  video.currentTime = seconds;
};

window.stop = () => {
  if (state.hls) state.hls.destroy();
  state.hls = null;
  video.removeAttribute('src');
  video.load();
};

window.snapshot = () => {
  const hls = state.hls;
  const quality = video.getVideoPlaybackQuality();
  const buffered = [];
  for (let i = 0; i < video.buffered.length; i++) {
    buffered.push([video.buffered.start(i), video.buffered.end(i)]);
  }
  const date = hls && hls.playingDate;
  return {
    now: Date.now(),
    currentTime: video.currentTime,
    duration: Number.isFinite(video.duration) ? video.duration : String(video.duration),
    paused: video.paused,
    seeking: video.seeking,
    seeked: state.seeked,
    readyState: video.readyState,
    videoWidth: video.videoWidth,
    videoHeight: video.videoHeight,
    mediaError: video.error ? { code: video.error.code, message: video.error.message } : null,
    totalVideoFrames: quality.totalVideoFrames,
    droppedVideoFrames: quality.droppedVideoFrames,
    buffered,
    levels: hls
      ? hls.levels.map((l) => ({
          width: l.width,
          height: l.height,
          bitrate: l.bitrate,
          codecs: [l.videoCodec, l.audioCodec].filter(Boolean).join(','),
        }))
      : [],
    currentLevel: hls ? hls.currentLevel : null,
    loadLevel: hls ? hls.loadLevel : null,
    playingDate: date ? date.getTime() : null,
    latency: hls ? hls.latency : null,
    targetLatency: hls ? hls.targetLatency : null,
    switched: state.switched.slice(),
    errors: state.errors.slice(),
    fatal: state.fatal,
  };
};
</script>
</body>
</html>
`;

/** Serves the player page and hls.js on 127.0.0.1 (another origin than greenroom's). */
async function startPlayerServer() {
  const hlsJs = fs.readFileSync(HLS_JS);
  const port = await freeTcpPort();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname === '/' || url.pathname === '/player.html') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(PLAYER_HTML);
    } else if (url.pathname === '/hls.min.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      res.end(hlsJs);
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  server.baseUrl = `http://127.0.0.1:${port}`;
  return server;
}

/** `GET url` → `{status, headers, text, json}`; `token`: the bearer token to send. */
async function get(url, { token } = {}) {
  const res = await fetch(url, {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** The `#EXT-X-STREAM-INF` variants of a master playlist, with their absolute URLs. */
function masterVariants(text, masterUrl) {
  const lines = text.split('\n').map((l) => l.trim());
  const variants = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith('#EXT-X-STREAM-INF:')) continue;
    const attrs = lines[i].slice('#EXT-X-STREAM-INF:'.length);
    const resolution = /(?:^|,)RESOLUTION=(\d+)x(\d+)/.exec(attrs);
    const bandwidth = /(?:^|,)BANDWIDTH=(\d+)/.exec(attrs);
    const codecs = /(?:^|,)CODECS="([^"]*)"/.exec(attrs);
    let j = i + 1;
    while (j < lines.length && (lines[j] === '' || lines[j].startsWith('#'))) j++;
    variants.push({
      resolution: resolution ? `${resolution[1]}x${resolution[2]}` : null,
      height: resolution ? Number(resolution[2]) : 0,
      bandwidth: bandwidth ? Number(bandwidth[1]) : null,
      codecs: codecs ? codecs[1] : null,
      url: j < lines.length ? new URL(lines[j], masterUrl).href : null,
    });
  }
  return variants;
}

/** `WxH` of each variant, highest first. */
function resolutions(variants) {
  return variants
    .slice()
    .sort((a, b) => b.height - a.height)
    .map((v) => v.resolution);
}

const round = (x) => Math.round(x);

/** CPU seconds (user + system) a process has used so far; null where /proc is not there. */
function cpuSeconds(pid) {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** Starts a CPU meter on `pid`; `read()` gives the cores it used on average since. */
function cpuMeter(pid) {
  const cpu0 = cpuSeconds(pid);
  const t0 = Date.now();
  return {
    read: () => {
      const cpu = cpuSeconds(pid);
      if (cpu === null || cpu0 === null) return null;
      return Math.round(((cpu - cpu0) / ((Date.now() - t0) / 1000)) * 100) / 100;
    },
  };
}

describe('HLS of live streams and their replays, played by hls.js', () => {
  let server;
  let browser;
  let context;
  let players; // the player page's HTTP server
  const publishers = new Set(); // ffmpeg children still running
  const rtmp = {}; // step a → step b: {stream, ffmpeg}
  let s3; // recordings go to a real S3-compatible server

  before(async () => {
    s3 = await startS3();
    server = await Greenroom.start({
      env: {
        GREENROOM_HLS: 'true',
        GREENROOM_HLS_PRESET: 'ultrafast',
        GREENROOM_S3_BUCKET: S3_BUCKET,
        GREENROOM_S3_ENDPOINT: `http://127.0.0.1:${s3.port}`,
        GREENROOM_S3_ACCESS_KEY_ID: S3_ACCESS,
        GREENROOM_S3_SECRET_ACCESS_KEY: S3_SECRET,
        GREENROOM_S3_PATH_STYLE: 'true',
        GREENROOM_RETENTION_INTERVAL_SECS: '1',
      },
    });
    players = await startPlayerServer();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await keepIceOnLoopback(context);
  });

  after(async () => {
    for (const child of publishers) await stopChild(child);
    if (browser) await browser.close().catch(() => {});
    if (players) {
      players.closeAllConnections();
      await new Promise((resolve) => players.close(resolve));
    }
    if (server) await server.stop();
    if (s3) {
      await stopChild(s3.child);
      fs.rmSync(s3.root, { recursive: true, force: true });
    }
  });

  function ffmpegLogTail(child) {
    try {
      const lines = fs.readFileSync(child.logFile, 'utf8').trimEnd().split('\n');
      return lines.slice(-15).join('\n') || '(empty)';
    } catch {
      return '(no log)';
    }
  }

  /**
   * A step with its notes (`ctx.notes`: functions returning text), the players' state and the
   * ffmpeg and server logs appended to its failure; the pages it opens through `ctx.page` are
   * closed whatever happens.
   */
  const step = (name, fn) =>
    it(name, { timeout: STEP_TIMEOUT_MS }, async () => {
      const ctx = { pages: [], notes: [] };
      ctx.page = async (label) => {
        const page = await context.newPage();
        page.on('pageerror', (err) => console.error(`[${label}] page error: ${err.message}`));
        page.label = label;
        ctx.pages.push(page);
        return page;
      };
      try {
        await fn(ctx);
      } catch (err) {
        for (const note of ctx.notes) err.message += `\n${note()}`;
        for (const page of ctx.pages) {
          const seen = await page.evaluate(() => window.snapshot?.()).catch(() => null);
          if (seen) err.message += `\n--- ${page.label} player ---\n${JSON.stringify(seen)}`;
        }
        for (const child of publishers) {
          err.message += `\n--- ffmpeg (exit ${JSON.stringify(child.exited)}) ---\n${ffmpegLogTail(
            child,
          )}`;
        }
        if (server) {
          err.message += `\n--- greenroom log (tail) ---\n${server.logTail(40)}`;
          if (process.env.GREENROOM_KEEP_DATA) err.message += `\n(full log: ${server.logFile})`;
        }
        throw err;
      } finally {
        for (const page of ctx.pages) await page.close().catch(() => {});
      }
    });

  function startFfmpeg(url) {
    const logFile = path.join(server.dataDir, 'ffmpeg-1080p.log');
    const child = spawnTracked('ffmpeg', ffmpegArgs(url), { logFile });
    child.logFile = logFile;
    publishers.add(child);
    return child;
  }

  async function stopFfmpeg(child) {
    await stopChild(child);
    publishers.delete(child);
  }

  function snapshot(page) {
    return page.evaluate(() => window.snapshot());
  }

  /** Opens a player page and checks this Chromium can play H.264/AAC through hls.js. */
  async function openPlayer(ctx, label) {
    const page = await ctx.page(label);
    await page.goto(`${players.baseUrl}/player.html`);
    const supports = await page.evaluate(() => window.supports());
    assert.ok(
      supports.isSupported && supports.h264Aac,
      `${label}: this Chromium cannot play H.264/AAC through MSE: ${JSON.stringify(supports)}`,
    );
    return page;
  }

  /** Starts hls.js on `url`; resolves with the snapshot at MANIFEST_PARSED. */
  async function play(page, url, lowLatency) {
    return page.evaluate(([u, ll]) => window.play(u, { lowLatency: ll }), [url, lowLatency]);
  }

  /**
   * Waits until the page decodes video (optionally `height` high) and `currentTime` moves on
   * by `advanceSeconds` after that. Fails at once on a fatal hls.js error.
   */
  async function waitPlaying(page, what, { height, advanceSeconds = 2 } = {}) {
    const decoding = (s) =>
      s.videoWidth > 0 && !s.paused && (height === undefined || s.videoHeight === height);
    const noFatal = (s) =>
      assert.equal(s.fatal, null, `${what}: hls.js fatal error: ${JSON.stringify(s)}`);
    const first = await waitFor(
      `${what}: video decoding${height ? ` ${height} high` : ''} (videoWidth > 0, not paused)`,
      () => snapshot(page),
      (s) => s.fatal || decoding(s),
      { timeoutMs: MEDIA_TIMEOUT_MS, intervalMs: 250 },
    );
    noFatal(first);
    const moved = await waitFor(
      `${what}: currentTime advancing past ${(first.currentTime + advanceSeconds).toFixed(2)}`,
      () => snapshot(page),
      (s) => s.fatal || (decoding(s) && s.currentTime >= first.currentTime + advanceSeconds),
      { timeoutMs: MEDIA_TIMEOUT_MS, intervalMs: 250 },
    );
    noFatal(moved);
    assert.ok(
      moved.totalVideoFrames > first.totalVideoFrames,
      `${what}: frames decoded while currentTime advanced: ${JSON.stringify({ first, moved })}`,
    );
    return moved;
  }

  /** Averages `Date.now() - hls.playingDate` (and `hls.latency`) over `LATENCY_WINDOW_MS`. */
  async function measureLatency(page, what) {
    const samples = [];
    const latencies = [];
    const start = Date.now();
    let last;
    while (Date.now() - start < LATENCY_WINDOW_MS) {
      last = await snapshot(page);
      if (last.playingDate !== null && !last.paused && !last.seeking) {
        samples.push(last.now - last.playingDate);
        if (Number.isFinite(last.latency)) latencies.push(last.latency * 1000);
      }
      await sleep(LATENCY_SAMPLE_MS);
    }
    assert.ok(
      samples.length >= 5,
      `${what}: hls.playingDate known during playback in only ${samples.length} samples; ` +
        `last ${JSON.stringify(last)}`,
    );
    const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
    const figures = {
      glassToGlassMs: round(mean(samples)),
      minMs: round(Math.min(...samples)),
      maxMs: round(Math.max(...samples)),
      hlsLatencyMs: latencies.length ? round(mean(latencies)) : null,
      targetLatencyMs: Number.isFinite(last.targetLatency)
        ? round(last.targetLatency * 1000)
        : null,
      samples: samples.length,
      level: last.levels[last.currentLevel]?.height ?? null,
    };
    console.log(`[hls] ${what}: ${JSON.stringify(figures)}`);
    return figures;
  }

  /** Forces `hls.currentLevel` to the level `height` high; waits for LEVEL_SWITCHED and frames. */
  async function switchTo(page, height, what) {
    const before = await snapshot(page);
    const index = before.levels.findIndex((l) => l.height === height);
    assert.ok(index >= 0, `${what}: no ${height}p level in ${JSON.stringify(before.levels)}`);
    const switchedBefore = before.switched.length;
    // hls.js sends no LEVEL_SWITCHED when it already plays that level.
    const already = before.currentLevel === index && before.videoHeight === height;
    await page.evaluate((i) => window.setLevel(i), index);
    if (!already) {
      await waitFor(
        `${what}: LEVEL_SWITCHED to level ${index} (${height}p)`,
        () => snapshot(page),
        (s) => s.switched.slice(switchedBefore).includes(index) || s.fatal,
        { timeoutMs: MEDIA_TIMEOUT_MS, intervalMs: 250 },
      );
    }
    const playing = await waitPlaying(page, `${what} after switching to ${height}p`, { height });
    assert.equal(playing.currentLevel, index, `${what}: hls.currentLevel stays at ${height}p`);
    return playing;
  }

  step('a. RTMP 1080p: LL-HLS ladder plays in hls.js, levels switch, latency', async (ctx) => {
    const stream = await server.createStream('hls: rtmp 1080p');
    assert.match(
      stream.hls_url ?? '',
      new RegExp(`^${server.baseUrl}/hls/${stream.id}/master\\.m3u8$`),
      `hls_url in the stream JSON: ${JSON.stringify(stream)}`,
    );
    assert.match(stream.rtmp_url ?? '', /^rtmp:\/\/127\.0\.0\.1:\d+\//, 'rtmp_url');
    rtmp.stream = stream;
    rtmp.ffmpeg = startFfmpeg(stream.rtmp_url);
    const serverCpu = cpuMeter(server.child.pid);
    const ffmpegCpu = cpuMeter(rtmp.ffmpeg.pid);
    const cpuLine = () =>
      `[hls] CPU while live (cores): greenroom ${serverCpu.read()}, ffmpeg ${ffmpegCpu.read()}`;
    ctx.notes.push(cpuLine);
    await waitFor(
      'admin API status "live"',
      () => server.api('GET', `/api/v1/streams/${stream.id}`),
      (r) => r.body?.status === 'live' || rtmp.ffmpeg.exited,
      { timeoutMs: MEDIA_TIMEOUT_MS, intervalMs: 250 },
    );
    assert.equal(rtmp.ffmpeg.exited, null, 'ffmpeg still publishing');

    // The master playlist (it waits for the first segments) and one LL-HLS media playlist.
    const master = await waitFor(
      `GET ${stream.hls_url} → 200`,
      () => get(stream.hls_url),
      (r) => r.status === 200,
      { timeoutMs: MEDIA_TIMEOUT_MS, intervalMs: 1000 },
    );
    assert.equal(
      master.headers.get('access-control-allow-origin'),
      '*',
      'CORS header on the master playlist',
    );
    const variants = masterVariants(master.text, stream.hls_url);
    assert.deepEqual(
      resolutions(variants),
      ['1920x1080', '1280x720', '852x480', '640x360'],
      `master playlist variants:\n${master.text}`,
    );
    const low = variants.find((v) => v.height === 360);
    const media = await get(low.url);
    assert.equal(media.status, 200, `GET ${low.url}: ${media.status} ${media.text}`);
    assert.equal(media.headers.get('access-control-allow-origin'), '*', 'CORS on a media playlist');
    for (const tag of [
      '#EXT-X-PROGRAM-DATE-TIME:',
      '#EXT-X-PART:',
      '#EXT-X-PRELOAD-HINT:',
      'CAN-BLOCK-RELOAD=YES',
    ]) {
      assert.ok(media.text.includes(tag), `360p media playlist has ${tag}:\n${media.text}`);
    }

    // LL-HLS in hls.js.
    const page = await openPlayer(ctx, 'LL-HLS');
    const parsed = await play(page, stream.hls_url, true);
    assert.deepEqual(
      parsed.levels.map((l) => l.height).sort((a, b) => b - a),
      [1080, 720, 480, 360],
      `hls.js levels: ${JSON.stringify(parsed.levels)}`,
    );
    await waitPlaying(page, 'LL-HLS player', { advanceSeconds: 3 });
    const ll = await measureLatency(page, 'LL-HLS (lowLatencyMode: true)');

    const at360 = await switchTo(page, 360, 'LL-HLS player');
    assert.equal(at360.videoWidth, 640, `360p is 640 wide: ${JSON.stringify(at360)}`);
    const at1080 = await switchTo(page, 1080, 'LL-HLS player');
    assert.equal(at1080.videoWidth, 1920, `1080p is 1920 wide: ${JSON.stringify(at1080)}`);
    console.log(
      `[hls] LL-HLS player: ${at1080.totalVideoFrames} frames decoded, ` +
        `${at1080.droppedVideoFrames} dropped; non-fatal hls.js errors: ` +
        `${JSON.stringify(at1080.errors.map((e) => e.details))}`,
    );
    await page.evaluate(() => window.stop()); // one decoder at a time on 2 cores

    // Ordinary HLS in a second page.
    const plain = await openPlayer(ctx, 'HLS');
    await play(plain, stream.hls_url, false);
    await waitPlaying(plain, 'HLS player', { advanceSeconds: 3 });
    const normal = await measureLatency(plain, 'HLS (lowLatencyMode: false)');
    await plain.evaluate(() => window.stop());

    console.log(
      `[hls] glass-to-glass LL-HLS: ${ll.glassToGlassMs} ms, HLS: ${normal.glassToGlassMs} ms`,
    );
    console.log(cpuLine());
  });

  step('b. the RTMP recording becomes a replay that plays and seeks', async (ctx) => {
    assert.ok(rtmp.ffmpeg, 'needs step a (ffmpeg publishing)');
    const { stream } = rtmp;
    await stopFfmpeg(rtmp.ffmpeg);

    const recordings = await waitFor(
      'a recording "ready" (or "failed")',
      () => get(stream.recordings_url, { token: server.adminToken }),
      (r) =>
        r.status === 200 &&
        Array.isArray(r.json) &&
        r.json.some((x) => x.status === 'ready' || x.status === 'failed'),
      { timeoutMs: MEDIA_TIMEOUT_MS, intervalMs: 500 },
    );
    assert.equal(recordings.json.length, 1, `one recording: ${recordings.text}`);
    const recording = recordings.json[0];
    assert.equal(recording.status, 'ready', `recording: ${JSON.stringify(recording)}`);
    console.log(`[hls] replay: ${JSON.stringify(recording)}`);
    assert.ok(recording.duration_ms >= 5000, `duration_ms >= 5000: ${JSON.stringify(recording)}`);

    const replayMaster = await get(recording.replay_url);
    assert.equal(replayMaster.status, 200, `GET replay_url: ${replayMaster.text}`);
    assert.equal(
      replayMaster.headers.get('access-control-allow-origin'),
      '*',
      'CORS on the replay master playlist',
    );
    const replayVariants = masterVariants(replayMaster.text, recording.replay_url);
    assert.ok(replayVariants.length > 0, `replay master:\n${replayMaster.text}`);
    const lowest = replayVariants[replayVariants.length - 1].url;
    const vod = await get(lowest);
    assert.equal(vod.status, 200, `GET ${lowest}: ${vod.text}`);
    assert.ok(vod.text.includes('#EXT-X-ENDLIST'), `replay media playlist ends:\n${vod.text}`);
    if (recording.thumbnail_url) {
      const thumb = await fetch(recording.thumbnail_url);
      const bytes = (await thumb.arrayBuffer()).byteLength;
      assert.equal(thumb.status, 200, `GET thumbnail_url: ${thumb.status}`);
      assert.equal(thumb.headers.get('content-type'), 'image/jpeg', 'thumbnail content type');
      assert.ok(bytes > 0, 'thumbnail has bytes');
    }

    const page = await openPlayer(ctx, 'replay');
    const parsed = await play(page, recording.replay_url, false);
    assert.ok(parsed.levels.length > 0, `replay levels: ${JSON.stringify(parsed.levels)}`);
    const playing = await waitPlaying(page, 'replay player');
    const duration = await waitFor(
      'replay <video>.duration known and >= 5 s',
      () => snapshot(page),
      (s) => typeof s.duration === 'number' && s.duration >= 5,
      { timeoutMs: MEDIA_TIMEOUT_MS, intervalMs: 250 },
    ).then((s) => s.duration);
    console.log(
      `[hls] replay: <video>.duration ${duration.toFixed(2)} s, duration_ms ` +
        `${recording.duration_ms}, played from ${playing.currentTime.toFixed(2)} s at ` +
        `${playing.videoWidth}x${playing.videoHeight}`,
    );

    const middle = duration / 2;
    const seekedBefore = (await snapshot(page)).seeked;
    await page.evaluate((t) => window.seek(t), middle);
    const landed = await waitFor(
      `replay: seeked to ${middle.toFixed(2)} s`,
      () => snapshot(page),
      (s) => s.seeked > seekedBefore && !s.seeking,
      { timeoutMs: MEDIA_TIMEOUT_MS, intervalMs: 250 },
    );
    assert.ok(
      Math.abs(landed.currentTime - middle) < 2,
      `replay: currentTime ${landed.currentTime} after seeking to ${middle}: ` +
        JSON.stringify(landed),
    );
    const after = await waitPlaying(page, `replay after the seek to ${middle.toFixed(2)} s`);
    assert.ok(
      after.currentTime > middle && after.currentTime < duration,
      `replay plays on from the middle: ${JSON.stringify(after)}`,
    );
    console.log(
      `[hls] replay: seek to ${middle.toFixed(2)} s landed at ` +
        `${landed.currentTime.toFixed(2)} s, plays on`,
    );

    // The replay was played from the S3 bucket; once expired, the retention job removes it.
    const inBucket = path.join(s3.root, S3_BUCKET, 'recordings', rtmp.stream.id, recording.id);
    assert.ok(
      filesUnder(inBucket).some((f) => f.endsWith('.m4s')),
      `segments in the S3 bucket under ${inBucket}`,
    );
    const expire = await fetch(`${server.baseUrl}/api/v1/recordings/${recording.id}`, {
      method: 'PATCH',
      headers: {
        authorization: `Bearer ${server.adminToken}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ expires_at: '2020-01-01T00:00:00Z' }),
    });
    assert.equal(expire.status, 200, `PATCH expires_at: ${await expire.text()}`);
    await waitFor(
      'retention: the expired replay leaves S3 and the API',
      async () => ({
        files: filesUnder(inBucket).length,
        replay: (await get(recording.replay_url)).status,
      }),
      (s) => s.files === 0 && s.replay === 404,
      { timeoutMs: 20_000, intervalMs: 250 },
    );

    // By now the stream has been off air for a while: it has no live HLS any more.
    const gone = await waitFor(
      `GET ${stream.hls_url} → 404 after the publisher left`,
      () => get(stream.hls_url),
      (r) => r.status === 404,
      { timeoutMs: 15_000, intervalMs: 1000 },
    );
    assert.equal(gone.json?.error?.code, 'hls_not_found', `404 body: ${gone.text}`);
    assert.equal(gone.headers.get('access-control-allow-origin'), '*', 'CORS on the 404');
  });

  step('c. WHIP 1280x720 VP8 from the studio: 3 encoded variants play in hls.js', async (ctx) => {
    const stream = await server.createStream('hls: whip 720p');
    const studio = await ctx.page('studio');
    await studio.goto(stream.studio_url);
    assert.equal(await studio.inputValue('#key'), stream.stream_key, '#key from studio_url');
    assert.equal(await studio.inputValue('#codec'), 'vp8', '#codec defaults to VP8');
    assert.equal(await studio.isChecked('#simulcast'), true, '#simulcast checked by default');
    await studio.click('#golive');
    await waitFor(
      'studio #status "live"',
      () => statusText(studio),
      (s) => s === 'live' || s.startsWith('error'),
      { timeoutMs: MEDIA_TIMEOUT_MS },
    ).then((s) => assert.equal(s, 'live', 'studio #status after Go live'));
    const sent = await waitFor(
      'studio getStats: VP8 rid f sending at 1280 wide',
      () => outboundStats(studio),
      (s) => s.video.some((v) => v.rid === 'f' && v.frameWidth === 1280 && v.bytesSent > 0),
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
    assert.ok(
      sent.video.every((v) => v.codec === 'video/VP8'),
      `outbound codec: ${JSON.stringify(sent.video)}`,
    );

    const master = await waitFor(
      `GET ${stream.hls_url} → 200`,
      () => get(stream.hls_url),
      (r) => r.status === 200,
      { timeoutMs: MEDIA_TIMEOUT_MS, intervalMs: 1000 },
    );
    const variants = masterVariants(master.text, stream.hls_url);
    assert.deepEqual(
      resolutions(variants),
      ['1280x720', '852x480', '640x360'],
      `master playlist variants:\n${master.text}`,
    );
    // ffprobe reads every variant with the advertised size and codecs.
    for (const variant of variants) {
      const probed = JSON.parse(
        execFileSync(
          'ffprobe',
          ['-v', 'error', '-show_entries', 'stream=codec_name,width,height', '-of', 'json', variant.url],
          { encoding: 'utf8', timeout: 60_000 },
        ),
      ).streams;
      const video = probed.find((p) => p.codec_name === 'h264');
      assert.ok(video, `ffprobe ${variant.url}: ${JSON.stringify(probed)}`);
      assert.equal(`${video.width}x${video.height}`, variant.resolution, `ffprobe ${variant.url}`);
      assert.ok(
        probed.some((p) => p.codec_name === 'aac'),
        `ffprobe ${variant.url}: AAC audio in ${JSON.stringify(probed)}`,
      );
      assert.match(variant.codecs ?? '', /^avc1\.[0-9a-f]{6},mp4a\.40\.2$/, 'CODECS');
    }

    const page = await openPlayer(ctx, 'WHIP HLS');
    const parsed = await play(page, stream.hls_url, true);
    assert.equal(parsed.levels.length, 3, `hls.js levels: ${JSON.stringify(parsed.levels)}`);
    const playing = await waitPlaying(page, 'WHIP LL-HLS player', { advanceSeconds: 3 });
    console.log(
      `[hls] WHIP: playing level ${playing.currentLevel} at ` +
        `${playing.videoWidth}x${playing.videoHeight}`,
    );
    const top = await switchTo(page, 720, 'WHIP LL-HLS player');
    assert.equal(top.videoWidth, 1280, `720p is 1280 wide: ${JSON.stringify(top)}`);
    await measureLatency(page, 'WHIP LL-HLS (lowLatencyMode: true)');
    await page.evaluate(() => window.stop());

    await studio.click('#stop');
    await waitFor('studio #status "idle"', () => statusText(studio), (s) => s === 'idle');
  });
});
