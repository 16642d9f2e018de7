// Test harness: starts the real greenroom binary on free loopback ports, launches headless
// Chromium with fake camera and microphone, and reads WebRTC stats out of the pages.
//
// Everything started here is stopped by `stopAll()` (call it from an `after` hook); a process
// exit handler kills whatever is still running if a test run is interrupted.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.GREENROOM_CHROMIUM || '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream=fps=30',
  '--allow-loopback-in-peer-connection',
  // Pages without camera permission (the watch pages) would otherwise hide their host
  // candidates behind mDNS names; with this they offer a plain 127.0.0.1 candidate.
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

/** Path of the binary under test. */
export function greenroomBin() {
  if (process.env.GREENROOM_BIN) return process.env.GREENROOM_BIN;
  const target =
    process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache', 'greenroom-target');
  return path.join(target, 'debug', 'greenroom');
}

const running = new Set(); // child processes to kill on exit
process.on('exit', () => {
  for (const child of running) killGroup(child, 'SIGKILL');
});

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** A free TCP port on 127.0.0.1. */
export function freeTcpPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function bindUdp(port) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    sock.once('error', () => {
      sock.close();
      resolve(null);
    });
    sock.bind(port, '127.0.0.1', () => resolve(sock));
  });
}

/** First of `count` consecutive free UDP ports on 127.0.0.1 (worker i uses port + i). */
export async function freeUdpPorts(count) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = await bindUdp(0);
    const base = first.address().port;
    const socks = [first];
    let ok = base + count - 1 <= 65535;
    for (let i = 1; ok && i < count; i++) {
      const s = await bindUdp(base + i);
      if (s) socks.push(s);
      else ok = false;
    }
    await Promise.all(socks.map((s) => new Promise((r) => s.close(r))));
    if (ok) return base;
  }
  throw new Error(`no ${count} consecutive free UDP ports found`);
}

/** A running greenroom binary. */
export class Greenroom {
  constructor({ child, baseUrl, adminToken, dataDir, logFile }) {
    this.child = child;
    this.baseUrl = baseUrl;
    this.adminToken = adminToken;
    this.dataDir = dataDir;
    this.logFile = logFile;
    this.exited = null;
    child.once('exit', (code, signal) => {
      this.exited = { code, signal };
      running.delete(child);
    });
  }

  /**
   * Starts the binary with a fresh data dir and waits for `GET /healthz` → 200. `env` adds
   * server settings (e.g. `{ GREENROOM_HLS: 'true' }`) over the defaults; HLS is off unless
   * asked for, so the WebRTC tests don't pay for its transcoding. `dataDir` starts it on the
   * data dir of a server stopped with `keepData` instead (a restart with other settings).
   * `httpHost` is the address HTTP binds to (`0.0.0.0` to be reached from a network
   * namespace); `baseUrl` stays on 127.0.0.1.
   */
  static async start({
    timeoutMs = 60_000,
    env: extraEnv = {},
    dataDir: reused,
    httpHost = '127.0.0.1',
  } = {}) {
    const bin = greenroomBin();
    if (!fs.existsSync(bin)) {
      throw new Error(
        `greenroom binary not found at ${bin}: run \`cargo build -p greenroom\` or set GREENROOM_BIN`,
      );
    }
    const dataDir = reused || fs.mkdtempSync(path.join(os.tmpdir(), 'greenroom-browser-'));
    const httpPort = await freeTcpPort();
    const udpPort = await freeUdpPorts(2);
    const adminToken = crypto.randomBytes(24).toString('hex');
    const logFile = path.join(dataDir, 'greenroom.log');
    const log = fs.openSync(logFile, 'a');
    const env = {
      ...process.env,
      GREENROOM_DATA_DIR: dataDir,
      GREENROOM_HTTP_ADDR: `${httpHost}:${httpPort}`,
      GREENROOM_RTC_UDP_PORT: String(udpPort),
      GREENROOM_RTC_WORKERS: '2',
      GREENROOM_RTC_BIND_IP: '127.0.0.1',
      GREENROOM_RTMP_ADDR: '127.0.0.1:0',
      GREENROOM_ADMIN_TOKEN: adminToken,
      GREENROOM_LOG: process.env.GREENROOM_LOG || 'info',
      GREENROOM_HLS: 'false',
    };
    // Nothing from the caller's environment may point the server elsewhere: embedded SQLite
    // in the temp data dir, URLs from the bound address, candidates on 127.0.0.1 only,
    // recordings in the data dir, the default HLS ladder and timing.
    for (const name of [
      'DATABASE_URL',
      'GREENROOM_DATABASE_URL',
      'GREENROOM_CONFIG',
      'GREENROOM_PUBLIC_URL',
      'GREENROOM_RTC_ADVERTISE_IPS',
      'GREENROOM_ICE_SERVERS',
      'GREENROOM_ICE_USERNAME',
      'GREENROOM_ICE_CREDENTIAL',
      'GREENROOM_HLS_LADDER',
      'GREENROOM_HLS_PRESET',
      'GREENROOM_HLS_SEGMENT_MS',
      'GREENROOM_HLS_PART_MS',
      'GREENROOM_STORAGE_DIR',
      'GREENROOM_S3_BUCKET',
      'GREENROOM_S3_REGION',
      'GREENROOM_S3_ENDPOINT',
      'GREENROOM_S3_ACCESS_KEY_ID',
      'GREENROOM_S3_SECRET_ACCESS_KEY',
      'GREENROOM_S3_PATH_STYLE',
      'GREENROOM_S3_PREFIX',
    ]) {
      delete env[name];
    }
    Object.assign(env, extraEnv);
    const child = spawn(bin, ['serve'], {
      env,
      cwd: dataDir,
      detached: true, // own process group: stop() takes down anything it started
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    running.add(child);
    const server = new Greenroom({
      child,
      baseUrl: `http://127.0.0.1:${httpPort}`,
      adminToken,
      dataDir,
      logFile,
    });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (server.exited) {
        throw new Error(
          `greenroom exited during start-up (${JSON.stringify(server.exited)}):\n${server.logTail()}`,
        );
      }
      try {
        const res = await fetch(`${server.baseUrl}/healthz`);
        if (res.status === 200) return server;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await server.stop();
        throw new Error(`greenroom did not answer /healthz within ${timeoutMs} ms`);
      }
      await sleep(200);
    }
  }

  /** The last lines of the server log, for failure messages. */
  logTail(lines = 40) {
    try {
      const text = fs.readFileSync(this.logFile, 'utf8').trimEnd().split('\n');
      return text.slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /**
   * A JSON API call; returns `{status, body}`. It carries the admin token unless `admin` is
   * false or `token` (an account's session or API token) is given.
   */
  async api(method, urlPath, { body, admin = true, token } = {}) {
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    else if (admin) headers.Authorization = `Bearer ${this.adminToken}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(`${this.baseUrl}${urlPath}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep text
    }
    return { status: res.status, body: parsed };
  }

  /** `POST /api/v1/streams` → `{id, stream_key, studio_url, watch_url, ...}`. */
  async createStream(title) {
    const { status, body } = await this.api('POST', '/api/v1/streams', { body: { title } });
    if (status !== 200 && status !== 201) {
      throw new Error(`POST /api/v1/streams answered ${status}: ${JSON.stringify(body)}`);
    }
    for (const field of ['id', 'stream_key']) {
      if (!body || typeof body[field] !== 'string') {
        throw new Error(`POST /api/v1/streams: no "${field}" in ${JSON.stringify(body)}`);
      }
    }
    return body;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; removes the data dir unless `keepData`. */
  async stop({ graceMs = 5000, keepData = false } = {}) {
    if (!this.exited) {
      const gone = new Promise((resolve) => this.child.once('exit', resolve));
      killGroup(this.child, 'SIGTERM');
      const timedOut = await Promise.race([gone.then(() => false), sleep(graceMs, true)]);
      if (timedOut) {
        killGroup(this.child, 'SIGKILL');
        await gone;
      }
    }
    // Children of the binary (none expected) share its process group.
    killGroup(this.child, 'SIGKILL');
    running.delete(this.child);
    if (!keepData && !process.env.GREENROOM_KEEP_DATA) {
      fs.rmSync(this.dataDir, { recursive: true, force: true });
    }
  }
}

/** Headless Chromium with fake camera/microphone. */
export function launchChromium() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/**
 * Removes every `a=candidate` line that is not a UDP candidate on 127.0.0.1 from the SDP
 * offers the pages POST to `/whip/` and `/whep/`. The server advertises 127.0.0.1 only, and
 * Chromium also gathers LAN/IPv6/TCP candidates; keeping the test on loopback makes sure the
 * server never sends a connectivity check anywhere but this machine.
 */
export async function keepIceOnLoopback(context) {
  await context.route(/\/(whip|whep)\//, async (route) => {
    const request = route.request();
    if (request.method() !== 'POST') return route.continue();
    const sdp = request.postData() || '';
    return route.continue({ postData: loopbackOnly(sdp) });
  });
}

export function loopbackOnly(sdp) {
  return sdp
    .split('\r\n')
    .filter((line) => !line.startsWith('a=candidate:') || / udp \d+ 127\.0\.0\.1 /i.test(line))
    .join('\r\n');
}

/**
 * Polls `probe()` until `accept(value)` is true. Throws with `what` and the last value seen.
 */
export async function waitFor(what, probe, accept, { timeoutMs = 30_000, intervalMs = 500 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  let lastError;
  for (;;) {
    try {
      last = await probe();
      lastError = undefined;
      if (accept(last)) return last;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const seen = lastError ? `error: ${lastError.message}` : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${seen}`);
    }
    await sleep(intervalMs);
  }
}

/** Text of `#status` on a page. */
export function statusText(page) {
  return page.locator('#status').textContent();
}

/** Outbound RTP stats of the studio's peer connection. */
export function outboundStats(page) {
  return page.evaluate(async () => {
    const pc = window.greenroom && window.greenroom.pc;
    if (!pc) return { connectionState: 'none', video: [], audio: [] };
    const report = await pc.getStats();
    const video = [];
    const audio = [];
    report.forEach((s) => {
      if (s.type !== 'outbound-rtp') return;
      const codec = s.codecId && report.get(s.codecId);
      const row = {
        rid: s.rid || null,
        bytesSent: s.bytesSent || 0,
        packetsSent: s.packetsSent || 0,
        framesEncoded: s.framesEncoded || 0,
        frameWidth: s.frameWidth || 0,
        frameHeight: s.frameHeight || 0,
        framesPerSecond: s.framesPerSecond || 0,
        qualityLimitationReason: s.qualityLimitationReason,
        active: s.active,
        codec: codec ? codec.mimeType : null,
      };
      (s.kind === 'video' ? video : audio).push(row);
    });
    return { connectionState: pc.connectionState, video, audio };
  });
}

/** Inbound RTP stats of a watch page's peer connection. */
export function inboundStats(page) {
  return page.evaluate(async () => {
    const pc = window.greenroom && window.greenroom.pc;
    if (!pc) return { connectionState: 'none', video: null, audio: null };
    const report = await pc.getStats();
    let video = null;
    let audio = null;
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      if (s.kind === 'video') {
        video = {
          frameWidth: s.frameWidth || 0,
          frameHeight: s.frameHeight || 0,
          framesDecoded: s.framesDecoded || 0,
          packetsReceived: s.packetsReceived || 0,
          keyFramesDecoded: s.keyFramesDecoded || 0,
        };
      } else if (s.kind === 'audio') {
        audio = {
          packetsReceived: s.packetsReceived || 0,
          totalAudioEnergy: s.totalAudioEnergy || 0,
          audioLevel: s.audioLevel || 0,
        };
      }
    });
    return { connectionState: pc.connectionState, video, audio };
  });
}

/**
 * Finds the video layers in the admin stream JSON, wherever the server nests them: the
 * first `tracks` array with a `kind: "video"` entry, and its `layers`.
 */
export function videoLayersOf(json) {
  const stack = [json];
  while (stack.length) {
    const node = stack.pop();
    if (!node || typeof node !== 'object') continue;
    if (Array.isArray(node.tracks)) {
      const video = node.tracks.find((t) => t && t.kind === 'video');
      if (video && Array.isArray(video.layers)) return video.layers;
    }
    for (const value of Object.values(node)) {
      if (value && typeof value === 'object') stack.push(value);
    }
  }
  return null;
}

/**
 * Spawns a helper process (e.g. an ffmpeg publisher) in its own process group, with stdout
 * and stderr appended to `logFile`. It is killed by the exit handler if the run is
 * interrupted; stop it with `stopChild`.
 */
export function spawnTracked(command, args, { logFile, env } = {}) {
  const out = logFile ? fs.openSync(logFile, 'a') : 'ignore';
  const child = spawn(command, args, {
    env: env || process.env,
    detached: true,
    stdio: ['ignore', out, out],
  });
  if (logFile) fs.closeSync(out);
  running.add(child);
  child.exited = null;
  child.once('exit', (code, signal) => {
    child.exited = { code, signal };
    running.delete(child);
  });
  // Could not be started (e.g. not installed): no `exit` event follows.
  child.once('error', (err) => {
    if (!child.exited) child.exited = { error: err.message };
    running.delete(child);
  });
  return child;
}

/** SIGKILLs a `spawnTracked` child (and its process group) and waits until it has exited. */
export async function stopChild(child) {
  if (!child) return;
  if (!child.exited && child.pid !== undefined) {
    const gone = new Promise((resolve) => child.once('exit', resolve));
    killGroup(child, 'SIGKILL');
    await gone;
  }
  running.delete(child);
}
