// Studio: capture a camera or the screen and publish it to greenroom over WHIP.
//
// `#status` always reads exactly one of: `idle`, `connecting`, `live`, `error: <message>`.
// Tests reach the peer connection through `window.greenroom = { pc, session }`.

import {
  fetchStatus,
  formatBitrate,
  streamIdFromPath,
  whipPublish,
} from '/static/webrtc.js';

const STATS_INTERVAL_MS = 1000;

const $ = (id) => document.getElementById(id);
const ui = {
  key: $('key'),
  source: $('source'),
  codec: $('codec'),
  simulcast: $('simulcast'),
  golive: $('golive'),
  stop: $('stop'),
  status: $('status'),
  preview: $('preview'),
  previewEmpty: $('preview-empty'),
  stats: $('stats'),
  watchUrl: $('watch-url'),
  title: $('title'),
};

const streamId = streamIdFromPath();
const whipUrl = `/whip/${encodeURIComponent(streamId)}`;
const watchUrl = new URL(`/watch/${encodeURIComponent(streamId)}`, location.origin).href;

/** What tests and the console can inspect. */
const greenroom = { pc: null, session: null, streamId };
window.greenroom = greenroom;

let media = null; // MediaStream being captured
let statsTimer = null;
let previousStats = new Map(); // outbound-rtp id -> {bytesSent, timestamp}
let attempt = 0; // bumps on every go-live/stop so late results of an old attempt are ignored

function setStatus(text) {
  ui.status.textContent = text;
  ui.status.dataset.state = text.startsWith('error') ? 'error' : text;
  const busy = text === 'connecting' || text === 'live';
  ui.golive.disabled = busy;
  ui.stop.disabled = !busy;
  ui.key.disabled = busy;
  ui.source.disabled = busy;
  ui.codec.disabled = busy;
  ui.simulcast.disabled = busy;
}

function keyFromHash() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  return params.get('key') || '';
}

async function capture(source) {
  if (source === 'screen') {
    const screen = await navigator.mediaDevices.getDisplayMedia({
      video: { frameRate: { ideal: 30 } },
      audio: false,
    });
    let mic = null;
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    } catch {
      // Screen without a microphone is still a stream.
    }
    const stream = new MediaStream(screen.getVideoTracks());
    if (mic) mic.getAudioTracks().forEach((t) => stream.addTrack(t));
    const [video] = stream.getVideoTracks();
    if (video) video.contentHint = 'detail';
    return stream;
  }
  return navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
    audio: true,
  });
}

function describeError(err) {
  if (!err) return 'unknown error';
  if (err.name === 'NotAllowedError') return 'camera or screen access was denied';
  if (err.name === 'NotFoundError') return 'no camera or microphone found';
  return err.message || String(err);
}

async function goLive() {
  const token = ui.key.value.trim();
  if (!token) {
    setStatus('error: enter the stream key');
    ui.key.focus();
    return;
  }
  const mine = ++attempt;
  setStatus('connecting');
  try {
    media = await capture(ui.source.value);
    if (mine !== attempt) return releaseMedia();
    ui.preview.srcObject = media;
    ui.previewEmpty.hidden = true;
    media.getVideoTracks().forEach((t) =>
      t.addEventListener('ended', () => {
        if (mine === attempt) stop();
      }),
    );

    const session = await whipPublish({
      url: whipUrl,
      token,
      stream: media,
      simulcast: ui.simulcast.checked,
      codec: ui.codec.value,
    });
    if (mine !== attempt) {
      session.stop();
      return;
    }
    greenroom.pc = session.pc;
    greenroom.session = session;
    watchConnection(session.pc, mine);
    startStats();
  } catch (err) {
    if (mine !== attempt) return;
    await teardown();
    setStatus(`error: ${describeError(err)}`);
  }
}

function watchConnection(pc, mine) {
  const update = () => {
    if (mine !== attempt) return;
    switch (pc.connectionState) {
      case 'connected':
        setStatus('live');
        break;
      case 'failed':
        teardown().then(() => setStatus('error: the connection to the server failed'));
        break;
      default:
        break;
    }
  };
  pc.addEventListener('connectionstatechange', update);
  update();
}

function releaseMedia() {
  if (media) media.getTracks().forEach((t) => t.stop());
  media = null;
  ui.preview.srcObject = null;
  ui.previewEmpty.hidden = false;
}

async function teardown() {
  stopStats();
  const session = greenroom.session;
  greenroom.session = null;
  if (session) await session.stop();
  releaseMedia();
}

async function stop() {
  attempt++;
  await teardown();
  setStatus('idle');
}

// ---- live stats -------------------------------------------------------------------------

function startStats() {
  stopStats();
  previousStats = new Map();
  statsTimer = setInterval(refreshStats, STATS_INTERVAL_MS);
  refreshStats();
}

function stopStats() {
  if (statsTimer) clearInterval(statsTimer);
  statsTimer = null;
  renderStats([]);
}

async function refreshStats() {
  const pc = greenroom.pc;
  if (!pc || pc.connectionState === 'closed') return;
  let report;
  try {
    report = await pc.getStats();
  } catch {
    return;
  }
  const rows = [];
  const seen = new Map();
  report.forEach((s) => {
    if (s.type !== 'outbound-rtp') return;
    const before = previousStats.get(s.id);
    let bitrate = 0;
    if (before && s.timestamp > before.timestamp) {
      bitrate = ((s.bytesSent - before.bytesSent) * 8 * 1000) / (s.timestamp - before.timestamp);
    }
    seen.set(s.id, { bytesSent: s.bytesSent, timestamp: s.timestamp });
    const codec = s.codecId ? report.get(s.codecId) : null;
    rows.push({
      kind: s.kind,
      rid: s.rid || '',
      width: s.frameWidth,
      height: s.frameHeight,
      fps: s.framesPerSecond,
      bitrate,
      codec: codec ? codec.mimeType.replace(/^(audio|video)\//, '') : '',
      active: s.active !== false,
    });
  });
  previousStats = seen;
  const order = { q: 0, h: 1, f: 2, '': 3 };
  rows.sort((a, b) =>
    a.kind === b.kind ? (order[a.rid] ?? 4) - (order[b.rid] ?? 4) : a.kind === 'video' ? -1 : 1,
  );
  renderStats(rows);
}

function renderStats(rows) {
  const body = ui.stats.tBodies[0];
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = body.insertRow();
    tr.className = 'empty';
    const td = tr.insertCell();
    td.colSpan = 5;
    td.textContent = 'Not sending.';
    return;
  }
  for (const r of rows) {
    const tr = body.insertRow();
    tr.dataset.kind = r.kind;
    if (r.rid) tr.dataset.rid = r.rid;
    const name = r.kind === 'video' ? `video${r.rid ? ` ${r.rid}` : ''}` : 'audio';
    const cells = [
      name,
      r.width && r.height ? `${r.width}x${r.height}` : '–',
      Number.isFinite(r.fps) ? String(Math.round(r.fps)) : '–',
      formatBitrate(r.bitrate),
      r.codec || '–',
    ];
    for (const text of cells) tr.insertCell().textContent = text;
  }
}

// ---- page set-up ------------------------------------------------------------------------

async function showTitle() {
  try {
    const s = await fetchStatus(streamId);
    if (s.title) {
      ui.title.textContent = s.title;
      document.title = `${s.title} · Studio · greenroom`;
    }
  } catch {
    // Unknown stream or server busy: the title is cosmetic; WHIP will report real errors.
  }
}

ui.key.value = keyFromHash();
ui.watchUrl.href = watchUrl;
ui.watchUrl.textContent = watchUrl;
$('broadcast').addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (!ui.golive.disabled) goLive();
});
ui.stop.addEventListener('click', stop);
window.addEventListener('hashchange', () => {
  const key = keyFromHash();
  if (key) ui.key.value = key;
});
window.addEventListener('pagehide', () => {
  const session = greenroom.session;
  if (session && session.sessionUrl) {
    fetch(session.sessionUrl, { method: 'DELETE', keepalive: true }).catch(() => {});
  }
});
setStatus('idle');
showTitle();
