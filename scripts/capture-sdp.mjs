#!/usr/bin/env node
// Captures the SDP offers real Chromium sends to greenroom and writes them to media/sdp/:
//
//   chromium-whip-simulcast.sdp  studio publisher: camera 1280x720 + mic, simulcast q/h/f
//   chromium-whip-single.sdp     the same publisher without simulcast
//   chromium-whep-recvonly.sdp   watch page viewer: recvonly audio + video
//
// Each offer is taken after ICE gathering completed. Candidate lines other than 127.0.0.1 UDP
// are dropped (they name this machine's interfaces); everything else is kept verbatim, CRLF
// line endings included.
//
// Run from the repository root, after `npm ci` in tests/browser:
//
//   node scripts/capture-sdp.mjs
//
// GREENROOM_CHROMIUM overrides the browser path (default /usr/bin/chromium).

import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// playwright-core lives in the browser tests' node_modules; resolve it from there.
const require = createRequire(path.join(root, 'tests', 'browser', 'package.json'));
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.GREENROOM_CHROMIUM || '/usr/bin/chromium';

// Same flags as tests/browser/harness.js.
const CHROMIUM_ARGS = [
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
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

const OUT_DIR = path.join(root, 'media', 'sdp');

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>greenroom SDP capture</title>
<script>
async function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return;
  await new Promise((resolve) => {
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
  });
}

// The studio and watch pages (crates/server/web/webrtc.js) use max-bundle; so do we.
async function offerOf(pc) {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const sdp = pc.localDescription.sdp;
  pc.getSenders().forEach((s) => s.track && s.track.stop());
  pc.close();
  return sdp;
}

// What the studio page does (WHIP).
window.publisherOffer = async (simulcast) => {
  const media = await navigator.mediaDevices.getUserMedia({
    audio: true,
    video: { width: 1280, height: 720 },
  });
  const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  const video = media.getVideoTracks()[0];
  const audio = media.getAudioTracks()[0];
  pc.addTransceiver(video, {
    direction: 'sendonly',
    streams: [media],
    sendEncodings: simulcast
      ? [
          { rid: 'q', scaleResolutionDownBy: 4 },
          { rid: 'h', scaleResolutionDownBy: 2 },
          { rid: 'f', scaleResolutionDownBy: 1 },
        ]
      : undefined,
  });
  pc.addTransceiver(audio, { direction: 'sendonly', streams: [media] });
  return offerOf(pc);
};

// What the watch page does (WHEP).
window.viewerOffer = async () => {
  const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.addTransceiver('video', { direction: 'recvonly' });
  return offerOf(pc);
};
</script>
`;

/** Keeps only 127.0.0.1 UDP candidates; every other line is untouched. */
function loopbackOnly(sdp) {
  const lines = sdp.split('\r\n');
  const kept = lines.filter((line) => {
    if (!line.startsWith('a=candidate:')) return true;
    // a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ ...
    const [, , transport, , address] = line.slice('a=candidate:'.length).split(' ');
    return transport.toLowerCase() === 'udp' && address === '127.0.0.1';
  });
  const out = kept.join('\r\n');
  if (!/^a=candidate:\S+ \d+ udp \d+ 127\.0\.0\.1 /im.test(out)) {
    throw new Error(`offer has no 127.0.0.1 UDP candidate:\n${sdp}`);
  }
  return out;
}

async function main() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/`;

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    await page.goto(url);
    const offers = {
      'chromium-whip-simulcast.sdp': await page.evaluate(() => window.publisherOffer(true)),
      'chromium-whip-single.sdp': await page.evaluate(() => window.publisherOffer(false)),
      'chromium-whep-recvonly.sdp': await page.evaluate(() => window.viewerOffer()),
    };
    fs.mkdirSync(OUT_DIR, { recursive: true });
    for (const [name, sdp] of Object.entries(offers)) {
      const file = path.join(OUT_DIR, name);
      fs.writeFileSync(file, loopbackOnly(sdp));
      console.log(`wrote ${path.relative(root, file)}`);
    }
    console.log(`Chromium ${browser.version()}`);
  } finally {
    await browser.close();
    server.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
