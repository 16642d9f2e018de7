// Watch page: play a greenroom stream over WHEP (native HLS where the browser has no WebRTC),
// and get access to a paid one.
//
// `#status` always reads exactly one of:
//   connecting  the WHEP session is being set up
//   waiting     connected, but the stream is not live yet
//   playing     video frames are being decoded
//   locked      the stream is paid and this viewer has no access (yet): the access panel
//               below the player says how to get it
//   ended       the stream stopped (or is over); turns back to `playing` when frames decode again
//
// A paid stream is played with a playback token (`POST .../playback-token`): a bearer token
// for WHEP, in the URL for HLS. Tokens are short-lived; the page renews its token before it
// expires, so a WHEP reconnect (or the HLS player's next request) always has a valid one. The
// token request answers 401 to nobody and 403 to an account without a pass: the page is then
// `locked` until the viewer signs in, claims or buys a pass, or enrols with tokens.
// Tests reach the peer connection through `window.greenroom = { pc }`.

import { apiRequest, currentAccount, segment } from '/static/api.js';
import { bindAccountBar } from '/static/account.js';
import { byId as $, notifier } from '/static/ui.js';
import { createCommerce } from '/static/watch-access.js';
import {
  fetchStatus,
  renewSession,
  setLayer,
  streamIdFromPath,
  whepSubscribe,
} from '/static/webrtc.js';

const STATUS_POLL_MS = 2000;
const STATS_INTERVAL_MS = 1000;
const RECONNECT_DELAY_MS = 3000;
const RECONNECT_DELAY_MAX_MS = 30_000;
/** A token is renewed this long before it expires (at most a fifth of its lifetime). */
const TOKEN_RENEW_AHEAD_MS = 60_000;
/** A token with less time left than this is renewed before it is presented. */
const TOKEN_MIN_LEFT_MS = 5_000;
const TOKEN_RETRY_MS = 5_000;
const LAYERS = ['q', 'h', 'f'];
/** Token answers that mean "this viewer may not watch": sign in, or get a pass. */
const NO_ACCESS = new Set(['unauthorized', 'access_required']);

const ui = {
  player: $('player'),
  overlay: $('overlay'),
  unmute: $('unmute'),
  status: $('status'),
  info: $('info'),
  layer: $('layer'),
  title: $('title'),
  channel: $('channel'),
  stateLabel: $('state-label'),
  accessLabel: $('access-label'),
  description: $('description'),
  viewers: $('viewers'),
  notice: $('notice'),
};

const streamId = streamIdFromPath();
const whepUrl = `/whep/${encodeURIComponent(streamId)}`;
/** Browsers without WebRTC play the server's HLS natively (Safari on old iOS). */
const mode = typeof RTCPeerConnection === 'function' ? 'webrtc' : 'hls';

const greenroom = { pc: null, session: null, streamId };
window.greenroom = greenroom;

const state = {
  status: 'connecting',
  connected: false,
  publicStatus: null, // last answer of the public status
  apiStatus: null, // its `status`: scheduled | idle | live | ended | cancelled
  access: null, // its `access`: free | paid (null until known)
  locked: false, // the token request said this viewer has no access
  hlsSource: false, // the player plays an HLS URL (browsers without WebRTC)
  decoding: false, // frames were decoded during the last stats interval
  framesDecoded: 0,
  generation: 0, // bumps on every (re)subscribe
  failures: 0, // subscribe attempts that failed in a row
  account: null,
};

const token = { value: null, hlsUrl: null, expiresAtMs: 0, timer: null, pending: null };

const OVERLAY_TEXT = {
  connecting: 'Connecting…',
  waiting: 'Waiting for the stream to start…',
  playing: '',
  locked: 'This stream is for pass holders: see below to get access.',
  ended: 'The stream has ended.',
};

const STATE_TEXT = {
  scheduled: 'Scheduled',
  idle: 'Not live yet',
  live: 'Live',
  ended: 'Ended',
  cancelled: 'Cancelled',
};

function setStatus(next) {
  if (state.status === next) return;
  state.status = next;
  ui.status.textContent = next;
  ui.status.dataset.state = next;
  ui.overlay.textContent = OVERLAY_TEXT[next];
  ui.overlay.hidden = next === 'playing';
}

/** Over for good: ended, or cancelled before it started. */
const isOver = () => state.apiStatus === 'ended' || state.apiStatus === 'cancelled';

/** Derives `#status` from access, the connection, the decoder and the public status. */
function evaluate() {
  const offAir = isOver() || state.apiStatus === 'idle' || state.apiStatus === 'scheduled';
  if (state.locked) {
    setStatus(isOver() ? 'ended' : 'locked');
  } else if (state.decoding && !offAir) {
    setStatus('playing');
  } else if (isOver()) {
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

/** Shows a message above the player for a while. */
const say = notifier(ui.notice);

// ---- playback token ---------------------------------------------------------------------

/** A token valid for a while yet: the one held, or a new one. */
async function currentToken() {
  if (token.value && token.expiresAtMs - Date.now() > TOKEN_MIN_LEFT_MS) return token.value;
  return renewToken();
}

/** Asks for a new token; callers at the same time share one request. */
function renewToken() {
  if (!token.pending) {
    token.pending = fetchToken().finally(() => {
      token.pending = null;
    });
  }
  return token.pending;
}

async function fetchToken() {
  const asked = Date.now();
  const { headers, body } = await apiRequest(
    'POST',
    `/api/v1/streams/${segment(streamId)}/playback-token`,
    { right: 'watch' },
  );
  // The lifetime by the server's clock (its `Date` header): a skewed local clock is harmless.
  const serverNow = Date.parse(headers.get('Date') || '');
  const lifetimeMs = Date.parse(body.expires_at) - (Number.isFinite(serverNow) ? serverNow : asked);
  token.value = body.token;
  token.hlsUrl = body.hls_url;
  token.expiresAtMs = Date.now() + lifetimeMs;
  clearTimeout(token.timer);
  const ahead = Math.min(TOKEN_RENEW_AHEAD_MS, lifetimeMs / 5);
  token.timer = setTimeout(renewAhead, Math.max(lifetimeMs - ahead, 1000));
  return body.token;
}

/**
 * Renews the token before it expires: the WebRTC session gets it (the server ends a session
 * whose token ran out), HLS switches to it at once.
 */
async function renewAhead() {
  try {
    const fresh = await renewToken();
    const session = greenroom.session;
    if (session && session.sessionUrl) await renewSession(session.sessionUrl, fresh);
    if (state.hlsSource) playHlsSource();
  } catch (err) {
    if (NO_ACCESS.has(err.code)) {
      lock(); // the grant ended (or the session): say so rather than fail at the next reconnect
    } else if (err.status !== 409) {
      token.timer = setTimeout(renewAhead, TOKEN_RETRY_MS);
    }
  }
}

function dropToken() {
  clearTimeout(token.timer);
  token.value = null;
  token.hlsUrl = null;
  token.expiresAtMs = 0;
}

// ---- access -----------------------------------------------------------------------------

/** No access for this viewer: stop playing and show the access panel. */
function lock() {
  state.generation++; // whatever is in flight is stale
  dropToken();
  stopPlayback();
  state.locked = true;
  commerce.showPanel();
  evaluate();
}

/** The viewer may have access now: ask for a token again, and play if given one. */
async function recheckAccess() {
  if (state.access !== 'paid') return;
  try {
    await renewToken();
  } catch (err) {
    if (NO_ACCESS.has(err.code)) lock();
    return;
  }
  if (state.locked) unlock();
}

/** Access was given (or is not needed any more): play. */
function unlock() {
  state.locked = false;
  commerce.hidePanel();
  setStatus('connecting');
  subscribe();
}

/** What a refused token request means for the page. */
function tokenRefused(err, mine) {
  if (NO_ACCESS.has(err.code)) {
    lock();
  } else if (err.status === 409 || err.status === 404) {
    state.apiStatus = 'ended'; // over: there is nothing to watch live
    evaluate();
  } else {
    retry(mine);
  }
}

const commerce = createCommerce({
  streamId,
  say,
  onGranted: recheckAccess,
  onSignedIn: (account) => {
    setAccount(account);
    recheckAccess();
  },
});

const accountBar = bindAccountBar($('account-bar'), {
  onSignedOut: () => {
    setAccount(null);
    if (state.access === 'paid') lock();
  },
});

function setAccount(account) {
  state.account = account;
  accountBar.show(account);
  commerce.setAccount(account);
}

// ---- playing ----------------------------------------------------------------------------

async function subscribe() {
  const mine = ++state.generation;
  stopPlayback();
  state.framesDecoded = 0;
  if (state.status !== 'ended') setStatus('connecting');
  let playbackToken = null;
  if (state.access === 'paid' || mode === 'hls') {
    try {
      playbackToken = await currentToken();
    } catch (err) {
      if (mine === state.generation) tokenRefused(err, mine);
      return;
    }
    if (mine !== state.generation) return;
  }
  if (mode === 'hls') {
    playHls(mine);
    return;
  }
  const media = new MediaStream();
  attachWhenLoaded(media);
  try {
    const layer = ui.layer.value === 'auto' ? null : ui.layer.value;
    const session = await whepSubscribe({
      url: whepUrl,
      layer,
      token: state.access === 'paid' ? playbackToken : null,
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
    if (err.code === 'token_required') state.access = 'paid'; // it became paid meanwhile
    if (err.code === 'token_expired' || err.code === 'invalid_token') dropToken();
    retry(mine);
  }
}

/** Plays the HLS URL of the current token (it carries the token in its query). */
function playHlsSource() {
  state.hlsSource = true;
  ui.player.src = token.hlsUrl;
  ui.player.play().catch(() => {});
}

function playHls(mine) {
  if (!token.hlsUrl || ui.player.canPlayType('application/vnd.apple.mpegurl') === '') {
    ui.overlay.textContent = 'This browser cannot play this stream (no WebRTC, and no HLS here).';
    return;
  }
  ui.player.onerror = () => retry(mine);
  playHlsSource();
  state.connected = true;
  evaluate();
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

/** Ends the WHEP session (or the HLS source) and blanks the player. */
function stopPlayback() {
  const old = greenroom.session;
  greenroom.session = null;
  if (old) old.stop();
  if (state.hlsSource) {
    state.hlsSource = false;
    ui.player.onerror = null;
    ui.player.removeAttribute('src');
    ui.player.load(); // stops fetching
  }
  ui.player.srcObject = null;
  state.connected = false;
  state.decoding = false;
}

function retry(mine) {
  if (mine !== state.generation) return;
  state.generation++;
  stopPlayback();
  state.failures++;
  const delay = Math.min(RECONNECT_DELAY_MS * state.failures, RECONNECT_DELAY_MAX_MS);
  const next = state.generation;
  setTimeout(() => {
    // Nothing else (a lock, an unlock, another retry) started meanwhile.
    if (next === state.generation && !state.locked) subscribe();
  }, delay);
}

// ---- decoder and public status ----------------------------------------------------------

/** Frames decoded so far and the picture now: `{frames, width, height, fps}`. */
async function decoded() {
  if (mode === 'hls') {
    const quality = ui.player.getVideoPlaybackQuality?.();
    return {
      frames: quality ? quality.totalVideoFrames - quality.droppedVideoFrames : 0,
      width: ui.player.videoWidth,
      height: ui.player.videoHeight,
      fps: NaN,
    };
  }
  const pc = greenroom.pc;
  if (!pc || pc.connectionState === 'closed') return null;
  let report;
  try {
    report = await pc.getStats();
  } catch {
    return null;
  }
  let video = null;
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') video = s;
  });
  if (!video) return { frames: 0, width: 0, height: 0, fps: NaN };
  return {
    frames: video.framesDecoded || 0,
    width: video.frameWidth || 0,
    height: video.frameHeight || 0,
    fps: video.framesPerSecond,
  };
}

async function refreshStats() {
  const now = await decoded();
  if (!now) return;
  const decodingNow = now.frames > state.framesDecoded;
  state.framesDecoded = now.frames;
  const wasDecoding = state.decoding;
  state.decoding = decodingNow;
  if (decodingNow && now.width) {
    const fps = Number.isFinite(now.fps) ? ` · ${Math.round(now.fps)} fps` : '';
    ui.info.textContent = `${now.width}x${now.height}${fps}`;
  } else if (!decodingNow) {
    ui.info.textContent = '–';
  }
  if (decodingNow && !wasDecoding && state.apiStatus !== 'live') {
    // Frames arrived before the poll noticed the stream went live: ask now.
    pollStatus();
  }
  evaluate();
}

function showFacts(s) {
  if (s.title) {
    ui.title.textContent = s.title;
    document.title = `${s.title} · greenroom`;
  }
  ui.channel.hidden = !s.channel;
  ui.channel.textContent = s.channel ? `@${s.channel}` : '';
  let label = STATE_TEXT[s.status] || s.status;
  if (s.status === 'scheduled' && s.scheduled_at) {
    label += ` for ${new Date(s.scheduled_at).toLocaleString()}`;
  }
  ui.stateLabel.textContent = label;
  ui.stateLabel.dataset.state = s.status;
  ui.accessLabel.hidden = s.access !== 'paid';
  ui.accessLabel.textContent = 'Pass holders';
  ui.description.hidden = !s.description;
  ui.description.textContent = s.description || '';
  if (Number.isFinite(s.viewers)) ui.viewers.textContent = String(s.viewers);
}

async function pollStatus() {
  try {
    const s = await fetchStatus(streamId);
    state.publicStatus = s;
    state.apiStatus = s.status;
    const changed = state.access !== null && s.access !== state.access;
    state.access = s.access;
    showFacts(s);
    commerce.setStream(s);
    if (isOver()) dropToken();
    if (changed && s.access === 'paid' && !state.locked) {
      subscribe(); // made paid while this page plays it for free: play it with a token
    } else if (changed && s.access === 'free' && state.locked) {
      unlock();
    }
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

async function start() {
  syncMuteButton();
  ui.status.textContent = state.status;
  setInterval(refreshStats, STATS_INTERVAL_MS);
  setInterval(pollStatus, STATUS_POLL_MS);
  // Who is watching and what the stream is decide how to play it; neither must hold up a
  // free stream for long, so both are asked at once.
  const [account] = await Promise.all([currentAccount().catch(() => null), pollStatus()]);
  setAccount(account);
  commerce.followCheckout();
  subscribe();
}

start();
