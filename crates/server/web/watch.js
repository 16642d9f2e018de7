// Watch page: play a greenroom stream over WHEP.
//
// `#status` always reads exactly one of:
//   connecting  the WHEP session is being set up
//   waiting     connected, but the stream is not live yet
//   playing     video frames are being decoded
//   ended       the stream stopped (or is over); turns back to `playing` when frames decode again
// Tests reach the peer connection through `window.greenroom = { pc }`.

import { fetchStatus, setLayer, streamIdFromPath, whepSubscribe } from '/static/webrtc.js';

const STATUS_POLL_MS = 2000;
const STATS_INTERVAL_MS = 1000;
const RECONNECT_DELAY_MS = 3000;
const RECONNECT_DELAY_MAX_MS = 30_000;
const LAYERS = ['q', 'h', 'f'];

const $ = (id) => document.getElementById(id);
const ui = {
  player: $('player'),
  overlay: $('overlay'),
  unmute: $('unmute'),
  status: $('status'),
  info: $('info'),
  layer: $('layer'),
  title: $('title'),
  viewers: $('viewers'),
};

const streamId = streamIdFromPath();
const whepUrl = `/whep/${encodeURIComponent(streamId)}`;

const greenroom = { pc: null, session: null, streamId };
window.greenroom = greenroom;

const state = {
  status: 'connecting',
  connected: false,
  apiStatus: null, // last `status` from the public API: idle | live | ended
  decoding: false, // frames were decoded during the last stats interval
  framesDecoded: 0,
  generation: 0, // bumps on every (re)subscribe
  failures: 0, // subscribe attempts that failed in a row
};

const OVERLAY_TEXT = {
  connecting: 'Connecting…',
  waiting: 'Waiting for the stream to start…',
  playing: '',
  ended: 'The stream has ended.',
};

function setStatus(next) {
  if (state.status === next) return;
  state.status = next;
  ui.status.textContent = next;
  ui.status.dataset.state = next;
  ui.overlay.textContent = OVERLAY_TEXT[next];
  ui.overlay.hidden = next === 'playing';
}

/** Derives `#status` from the connection, the decoder and the public status. */
function evaluate() {
  const offAir = state.apiStatus === 'idle' || state.apiStatus === 'ended';
  if (state.decoding && !offAir) {
    setStatus('playing');
  } else if (state.apiStatus === 'ended') {
    setStatus('ended'); // over for good (or no such stream)
  } else if (state.status === 'playing' && offAir) {
    setStatus('ended');
  } else if (state.status === 'connecting' && state.connected) {
    setStatus('waiting');
  }
  // `waiting` and `ended` stay until frames decode; `playing` rides out short stalls.
}

function initialLayer() {
  const layer = new URLSearchParams(location.search).get('layer');
  return LAYERS.includes(layer) ? layer : null;
}

// ---- WHEP session -----------------------------------------------------------------------

async function subscribe() {
  const mine = ++state.generation;
  state.connected = false;
  state.decoding = false;
  state.framesDecoded = 0;
  if (state.status !== 'ended') setStatus('connecting');
  const media = new MediaStream();
  attachWhenLoaded(media);
  try {
    const layer = ui.layer.value === 'auto' ? null : ui.layer.value;
    const session = await whepSubscribe({
      url: whepUrl,
      layer,
      onTrack: (track) => {
        media.addTrack(track);
        ui.player.play().catch(() => {});
      },
    });
    if (mine !== state.generation) {
      session.stop();
      return;
    }
    greenroom.pc = session.pc;
    greenroom.session = session;
    const pc = session.pc;
    const onState = () => {
      if (mine !== state.generation) return;
      if (pc.connectionState === 'connected') {
        state.connected = true;
        state.failures = 0;
        evaluate();
      } else if (pc.connectionState === 'failed') {
        retry(mine);
      }
    };
    pc.addEventListener('connectionstatechange', onState);
    onState();
  } catch (err) {
    console.warn('greenroom: subscribe failed:', err);
    retry(mine);
  }
}

// A media element with a source delays the page's load event until it has data; a stream
// that is not live yet would keep the page "loading" forever. Attach after `load`.
function attachWhenLoaded(media) {
  const attach = () => {
    ui.player.srcObject = media;
    ui.player.play().catch(() => {});
  };
  if (document.readyState === 'complete') attach();
  else window.addEventListener('load', attach, { once: true });
}

function retry(mine) {
  if (mine !== state.generation) return;
  state.generation++;
  const old = greenroom.session;
  greenroom.session = null;
  if (old) old.stop();
  state.failures++;
  const delay = Math.min(RECONNECT_DELAY_MS * state.failures, RECONNECT_DELAY_MAX_MS);
  setTimeout(subscribe, delay);
}

// ---- decoder and public status ----------------------------------------------------------

async function refreshStats() {
  const pc = greenroom.pc;
  if (!pc || pc.connectionState === 'closed') return;
  let report;
  try {
    report = await pc.getStats();
  } catch {
    return;
  }
  let video = null;
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') video = s;
  });
  const frames = video ? video.framesDecoded || 0 : 0;
  const decodingNow = frames > state.framesDecoded;
  state.framesDecoded = frames;
  const wasDecoding = state.decoding;
  state.decoding = decodingNow;
  if (decodingNow && video.frameWidth) {
    const fps = Number.isFinite(video.framesPerSecond) ? Math.round(video.framesPerSecond) : 0;
    ui.info.textContent = `${video.frameWidth}x${video.frameHeight} · ${fps} fps`;
  } else if (!decodingNow) {
    ui.info.textContent = '–';
  }
  if (decodingNow && !wasDecoding && state.apiStatus !== 'live') {
    // Frames arrived before the poll noticed the stream went live: ask now.
    pollStatus();
  }
  evaluate();
}

async function pollStatus() {
  try {
    const s = await fetchStatus(streamId);
    state.apiStatus = s.status;
    if (s.title) {
      ui.title.textContent = s.title;
      document.title = `${s.title} · greenroom`;
    }
    if (Number.isFinite(s.viewers)) ui.viewers.textContent = String(s.viewers);
  } catch (err) {
    if (err && err.status === 404) state.apiStatus = 'ended';
  }
  evaluate();
}

// ---- controls ---------------------------------------------------------------------------

async function changeLayer() {
  const value = ui.layer.value;
  const url = new URL(location.href);
  if (value === 'auto') url.searchParams.delete('layer');
  else url.searchParams.set('layer', value);
  history.replaceState(null, '', url);
  const session = greenroom.session;
  if (!session || !session.sessionUrl) return; // the next subscribe uses the new value
  try {
    // `auto` lifts the cap: the highest layer is the maximum, the server adapts below it.
    await setLayer(session.sessionUrl, value === 'auto' ? 'f' : value);
  } catch (err) {
    console.warn('greenroom: layer change failed:', err);
  }
}

function syncMuteButton() {
  ui.unmute.textContent = ui.player.muted ? 'Unmute' : 'Mute';
  ui.unmute.setAttribute('aria-pressed', String(!ui.player.muted));
}

ui.unmute.addEventListener('click', () => {
  ui.player.muted = !ui.player.muted;
  ui.player.play().catch(() => {});
  syncMuteButton();
});
ui.layer.value = initialLayer() || 'auto';
ui.layer.addEventListener('change', changeLayer);
window.addEventListener('pagehide', () => {
  const session = greenroom.session;
  if (session && session.sessionUrl) {
    fetch(session.sessionUrl, { method: 'DELETE', keepalive: true }).catch(() => {});
  }
});

syncMuteButton();
ui.status.textContent = state.status;
setInterval(refreshStats, STATS_INTERVAL_MS);
setInterval(pollStatus, STATUS_POLL_MS);
pollStatus();
subscribe();
