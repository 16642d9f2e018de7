// A viewer on a narrow or lossy link, in real Chromium: the studio page publishes 1280x720 in three
// simulcast layers on loopback; a second Chromium runs in its own network namespace behind a
// veth pair whose host side is rate-limited with `tc tbf`. Limited to 600 kbit/s, the viewer's
// bandwidth estimate (GCC on its transport-wide CC feedback) brings it down to a lower layer
// and it keeps decoding; with the limit lifted it climbs back to the full layer. Then 5 % of
// the UDP packets reaching the viewer are dropped at random (nftables in the namespace): NACKs
// get the lost packets sent again (as RTX) and the video keeps decoding with few freezes, the
// audio keeps flowing.
//
// Needs root (`ip netns`, `tc`, `nft`); anything else fails the test rather than skipping it.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { chromium } from 'playwright-core';

import {
  CHROMIUM,
  CHROMIUM_ARGS,
  Greenroom,
  inboundStats,
  keepIceOnLoopback,
  launchChromium,
  statusText,
  waitFor,
} from './harness.js';

const STEP_TIMEOUT_MS = 240_000;
const MEDIA_TIMEOUT_MS = 45_000;
/** The NACKed share or the estimate backs off within a second or two; the layer follows at its
 * next key frame. */
const DOWN_TIMEOUT_MS = 60_000;
/** After a back-off the loss-based ceiling is held for 4 s and then rises by 8 % a second, and
 * the layers climb one at a time at least 4 s apart: about 30 s from 300 kbit/s to the top. */
const UP_TIMEOUT_MS = 150_000;

function sh(command, args) {
  return execFileSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

/** A network namespace joined to the host by a veth pair, on a /30 of its own. */
class Namespace {
  constructor() {
    const tag = (process.pid % 4000) + 100;
    this.name = `grbw${tag}`;
    this.hostIf = `grbwh${tag}`;
    this.nsIf = `grbwv${tag}`;
    const octet = tag % 250;
    this.hostIp = `10.231.${octet}.1`;
    this.nsIp = `10.231.${octet}.2`;
  }

  create() {
    this.destroy();
    sh('ip', ['netns', 'add', this.name]);
    sh('ip', ['link', 'add', this.hostIf, 'type', 'veth', 'peer', 'name', this.nsIf]);
    sh('ip', ['link', 'set', this.nsIf, 'netns', this.name]);
    sh('ip', ['addr', 'add', `${this.hostIp}/30`, 'dev', this.hostIf]);
    sh('ip', ['link', 'set', this.hostIf, 'up']);
    const inNs = (...args) => sh('ip', ['netns', 'exec', this.name, ...args]);
    inNs('ip', 'addr', 'add', `${this.nsIp}/30`, 'dev', this.nsIf);
    inNs('ip', 'link', 'set', this.nsIf, 'up');
    inNs('ip', 'link', 'set', 'lo', 'up');
  }

  /** Limits what the host sends into the namespace (the viewer's downlink). */
  limit(rate) {
    sh('tc', [
      'qdisc', 'replace', 'dev', this.hostIf, 'root', 'tbf',
      'rate', rate, 'burst', '20kbit', 'latency', '150ms',
    ]);
  }

  unlimit() {
    sh('tc', ['qdisc', 'del', 'dev', this.hostIf, 'root']);
  }

  /** Drops `percent` % of the UDP packets arriving in the namespace, at random. */
  lose(percent) {
    const nft = (...args) => sh('ip', ['netns', 'exec', this.name, 'nft', ...args]);
    nft('add', 'table', 'inet', 'greenroom_loss');
    nft('add chain inet greenroom_loss input { type filter hook input priority 0; }');
    nft(`add rule inet greenroom_loss input meta l4proto udp numgen random mod 100 < ${percent} drop`);
  }

  unlose() {
    sh('ip', ['netns', 'exec', this.name, 'nft', 'delete', 'table', 'inet', 'greenroom_loss']);
  }

  destroy() {
    try {
      sh('ip', ['netns', 'del', this.name]);
    } catch {
      // not there
    }
    try {
      sh('ip', ['link', 'del', this.hostIf]);
    } catch {
      // went with the namespace
    }
  }
}

/** Keeps only the viewer's candidates on the namespace's address in its WHEP offers. */
async function keepIceOn(context, ip) {
  const own = new RegExp(` udp \\d+ ${ip.replace(/\./g, '\\.')} `, 'i');
  await context.route(/\/whep\//, async (route) => {
    const request = route.request();
    if (request.method() !== 'POST') return route.continue();
    const sdp = (request.postData() || '')
      .split('\r\n')
      .filter((line) => !line.startsWith('a=candidate:') || own.test(line))
      .join('\r\n');
    return route.continue({ postData: sdp });
  });
}

describe('a viewer behind a narrow, then a lossy link', () => {
  const ns = new Namespace();
  let server;
  let publisherBrowser;
  let viewerBrowser;
  let stream;
  let viewer;
  let wrapperDir;

  const step = (name, fn) =>
    it(name, { timeout: STEP_TIMEOUT_MS }, async () => {
      try {
        await fn();
      } catch (err) {
        if (server) err.message += `\n--- greenroom log (tail) ---\n${server.logTail(30)}`;
        throw err;
      }
    });

  /** The server's view of the one viewer session. */
  async function viewerSession() {
    const { body } = await server.api('GET', `/api/v1/streams/${stream.id}`);
    return body.viewer_sessions?.[0] ?? null;
  }

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'this test needs root for ip netns and tc');
    ns.create();
    server = await Greenroom.start({
      httpHost: '0.0.0.0',
      env: {
        GREENROOM_RTC_BIND_IP: '0.0.0.0',
        GREENROOM_RTC_ADVERTISE_IPS: `127.0.0.1,${ns.hostIp}`,
      },
    });
    stream = await server.createStream('narrow link');

    publisherBrowser = await launchChromium();
    const studioContext = await publisherBrowser.newContext();
    await keepIceOnLoopback(studioContext);
    const studio = await studioContext.newPage();
    await studio.goto(`${server.baseUrl}/studio/${stream.id}#key=${stream.stream_key}`);
    await studio.click('#golive');
    await waitFor('studio live', () => statusText(studio), (s) => s === 'live', {
      timeoutMs: MEDIA_TIMEOUT_MS,
    });

    // The viewer's Chromium runs inside the namespace (playwright talks to it over a pipe).
    wrapperDir = fs.mkdtempSync(path.join(os.tmpdir(), 'greenroom-netns-'));
    const wrapper = path.join(wrapperDir, 'chromium-in-namespace');
    fs.writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns.name} ${CHROMIUM} "$@"\n`, {
      mode: 0o755,
    });
    viewerBrowser = await chromium.launch({
      executablePath: wrapper,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    const viewerContext = await viewerBrowser.newContext();
    await keepIceOn(viewerContext, ns.nsIp);
    viewer = await viewerContext.newPage();
    viewer.on('pageerror', (err) => console.error(`[viewer] page error: ${err.message}`));
    const port = new URL(server.baseUrl).port;
    await viewer.goto(`http://${ns.hostIp}:${port}/watch/${stream.id}`);
  });

  after(async () => {
    for (const browser of [viewerBrowser, publisherBrowser]) {
      if (browser) await browser.close().catch(() => {});
    }
    if (server) await server.stop();
    ns.destroy();
    if (wrapperDir) fs.rmSync(wrapperDir, { recursive: true, force: true });
  });

  step('on an open link the viewer gets the full layer and has an estimate', async () => {
    await waitFor(
      'the namespaced viewer to decode 1280-wide video',
      () => inboundStats(viewer),
      (s) => s.video?.frameWidth === 1280 && s.video.framesDecoded > 30,
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
    const session = await waitFor(
      'a TWCC estimate for the viewer',
      viewerSession,
      (v) => v?.estimate_source === 'twcc' && v.estimate_bps > 0,
    );
    assert.equal(session.bandwidth_layer, 'f', JSON.stringify(session));
  });

  step('at 600 kbit/s it settles on a lower layer and keeps decoding', async () => {
    ns.limit('600kbit');
    const limitedAt = Date.now();
    // When the server lowers the viewer's bandwidth cap, seen from its API beside the page.
    const capDown = waitFor(
      'the server to lower the bandwidth cap',
      viewerSession,
      (v) => v && v.bandwidth_layer !== 'f',
      { timeoutMs: DOWN_TIMEOUT_MS, intervalMs: 100 },
    ).then((v) => ({ ms: Date.now() - limitedAt, session: v }));
    const lowered = await waitFor(
      'the viewer to move below the full layer',
      () => inboundStats(viewer),
      (s) => s.video && s.video.frameWidth > 0 && s.video.frameWidth < 1280,
      { timeoutMs: DOWN_TIMEOUT_MS, intervalMs: 100 },
    );
    const loweredMs = Date.now() - limitedAt;
    const cap = await capDown;
    console.log(
      `[network] limited to 600 kbit/s: cap ${cap.session.bandwidth_layer} after ${cap.ms} ms ` +
        `(estimate ${cap.session.estimate_bps} bit/s), ${lowered.video.frameWidth} wide decoded after ${loweredMs} ms`,
    );
    await waitFor(
      `frames to keep decoding below 1280 wide (from ${lowered.video.framesDecoded})`,
      () => inboundStats(viewer),
      (s) => s.video?.frameWidth < 1280 && s.video.framesDecoded > lowered.video.framesDecoded + 60,
      { timeoutMs: MEDIA_TIMEOUT_MS },
    );
    const session = await viewerSession();
    assert.notEqual(session.bandwidth_layer, 'f', JSON.stringify(session));
    assert.ok(session.estimate_bps < 1_200_000, `estimate under the limit: ${JSON.stringify(session)}`);
    const { body: metrics } = await server.api('GET', '/metrics', { admin: false });
    const downs = /greenroom_bandwidth_layer_downswitches_total (\d+)/.exec(metrics);
    assert.ok(downs && Number(downs[1]) >= 1, 'a bandwidth down-switch is counted');
  });

  step('with the limit lifted it climbs back to the full layer', async () => {
    ns.unlimit();
    const liftedAt = Date.now();
    await waitFor(
      'the viewer to decode 1280-wide video again',
      () => inboundStats(viewer),
      (s) => s.video?.frameWidth === 1280,
      { timeoutMs: UP_TIMEOUT_MS, intervalMs: 1000 },
    );
    const backAfter = Date.now() - liftedAt;
    const { body: metrics } = await server.api('GET', '/metrics', { admin: false });
    const probes = /greenroom_bandwidth_probes_total (\d+)/.exec(metrics)?.[1];
    const passed = /greenroom_bandwidth_probes_passed_total (\d+)/.exec(metrics)?.[1];
    console.log(
      `[network] limit lifted: 1280 wide again after ${backAfter} ms (probes: ${probes}, passed: ${passed})`,
    );
    const session = await viewerSession();
    assert.equal(session.bandwidth_layer, 'f', JSON.stringify(session));
  });

  step('with 5 % random loss NACKs keep the video decoding with few freezes', async () => {
    const before = await lossStats(viewer);
    ns.lose(5);
    const lossyMs = 20_000;
    await new Promise((resolve) => setTimeout(resolve, lossyMs));
    const during = await lossStats(viewer);
    ns.unlose();
    const decoded = during.framesDecoded - before.framesDecoded;
    const freezes = during.freezeCount - before.freezeCount;
    const summary = JSON.stringify({ before, during });
    assert.ok(during.packetsLost > before.packetsLost, `packets were lost: ${summary}`);
    assert.ok(during.nackCount > before.nackCount, `the viewer sent NACKs: ${summary}`);
    assert.ok(
      during.retransmitted > before.retransmitted,
      `lost packets came back as RTX: ${summary}`,
    );
    // 30 fps for 20 s is 600 frames; losing whole frames to loss would cost far more.
    assert.ok(decoded >= 400, `${decoded} frames decoded in ${lossyMs} ms: ${summary}`);
    assert.ok(freezes <= 3, `${freezes} freezes in ${lossyMs} ms: ${summary}`);
    assert.ok(
      during.audioPackets - before.audioPackets >= 500,
      `audio kept flowing: ${summary}`,
    );
    console.log(`[network] 5 % loss for ${lossyMs} ms: ${summary}`);
    const session = await viewerSession();
    assert.ok(session.nacks_received > 0, `the server counted NACKs: ${JSON.stringify(session)}`);
    const { body: metrics } = await server.api('GET', '/metrics', { admin: false });
    // The node's total counts every NACK the viewer's session did (it follows within a
    // selection interval, so give it a moment).
    let nodeNacks = 0;
    for (let i = 0; i < 20; i++) {
      const { body } = await server.api('GET', '/metrics', { admin: false });
      nodeNacks = Number(/greenroom_viewer_nacked_packets_total (\d+)/.exec(body)?.[1] ?? 0);
      if (nodeNacks >= session.nacks_received) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(
      nodeNacks >= session.nacks_received,
      `node NACK total ${nodeNacks} counts the viewer's ${session.nacks_received}`,
    );
    const resent = /greenroom_viewer_retransmitted_packets_total (\d+)/.exec(metrics);
    assert.ok(resent && Number(resent[1]) > 0, `the server resent packets: ${resent?.[0]}`);
    // Every viewer here was carried without webrtc-rs after its handshake (NACKs, feedback and
    // consent checks above went through the server's own path).
    const viewers = Number(/greenroom_viewers (\d+)/.exec(metrics)?.[1]);
    const detached = Number(/greenroom_viewers_detached (\d+)/.exec(metrics)?.[1]);
    assert.ok(viewers > 0 && detached === viewers, `${detached} of ${viewers} viewers detached`);
  });
});

/** Loss-related inbound statistics of a watch page. */
function lossStats(page) {
  return page.evaluate(async () => {
    const out = {
      framesDecoded: 0,
      freezeCount: 0,
      nackCount: 0,
      packetsLost: 0,
      retransmitted: 0,
      audioPackets: 0,
    };
    const report = await window.greenroom.pc.getStats();
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      if (s.kind === 'video') {
        out.framesDecoded = s.framesDecoded || 0;
        out.freezeCount = s.freezeCount || 0;
        out.nackCount = s.nackCount || 0;
        out.packetsLost = s.packetsLost || 0;
        out.retransmitted = s.retransmittedPacketsReceived ?? -1;
      } else if (s.kind === 'audio') {
        out.audioPackets = s.packetsReceived || 0;
      }
    });
    return out;
  });
}
