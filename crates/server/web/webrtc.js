// greenroom WebRTC helpers shared by the studio and the watch page.
//
// WHIP (publish) and WHEP (play) without trickle: the offer is sent once ICE gathering has
// completed (or after ICE_GATHER_TIMEOUT_MS), so it carries every local candidate, and the
// SDP answer from the server is applied as is.

import { GreenroomError, errorFromResponse } from '/static/api.js';

const ICE_GATHER_TIMEOUT_MS = 2000;

/** The simulcast ladder the studio sends: quarter, half and full resolution. */
export const SIMULCAST_ENCODINGS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', maxBitrate: 2_500_000 },
];

/** Video codecs the studio can send, by the name the `codec` option takes. */
export const VIDEO_CODECS = {
  vp8: { mimeType: 'video/VP8', label: 'VP8' },
  h264: { mimeType: 'video/H264', label: 'H.264' },
};

/** H.264 profile greenroom's viewers are most likely to decode (Constrained Baseline 3.1). */
const H264_PREFERRED_PROFILE = '42e01f';

/** Resolves once ICE gathering is complete, or after `timeoutMs`. */
export function iceGatheringDone(pc, timeoutMs = ICE_GATHER_TIMEOUT_MS) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', onChange);
      resolve();
    }
    function onChange() {
      if (pc.iceGatheringState === 'complete') done();
    }
    pc.addEventListener('icegatheringstatechange', onChange);
  });
}

/**
 * Creates the offer, waits for candidates, POSTs it and applies the answer.
 * Returns the absolute session URL (from `Location`) and the `ETag`.
 */
async function negotiate(pc, url, headers) {
  await pc.setLocalDescription(await pc.createOffer());
  await iceGatheringDone(pc);
  let response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', ...headers },
      body: pc.localDescription.sdp,
    });
  } catch (err) {
    throw new GreenroomError(`cannot reach the server (${err.message})`);
  }
  if (response.status !== 201 && response.status !== 200) {
    throw await errorFromResponse(response);
  }
  const location = response.headers.get('Location');
  const sessionUrl = location ? new URL(location, new URL(url, document.baseURI)).href : null;
  const etag = response.headers.get('ETag');
  const answer = await response.text();
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  return { sessionUrl, etag };
}

/** Ends a WHIP/WHEP session: DELETE on its URL, then closes the peer connection. */
async function endSession(pc, sessionUrl) {
  if (sessionUrl) {
    try {
      await fetch(sessionUrl, { method: 'DELETE', keepalive: true });
    } catch {
      // The server may already be gone; the peer connection is closed anyway.
    }
  }
  pc.close();
}

/**
 * Under CPU pressure Chromium otherwise shrinks the input, which shrinks every layer and can
 * drop the top ones; with simulcast the layers should keep their sizes and lose frame rate.
 */
async function keepResolution(sender) {
  try {
    const params = sender.getParameters();
    params.degradationPreference = 'maintain-resolution';
    await sender.setParameters(params);
  } catch {
    // Not supported by this browser: keep its default.
  }
}

function fmtpParam(codec, name) {
  const line = codec.sdpFmtpLine || '';
  for (const part of line.split(';')) {
    const [key, value] = part.trim().split('=');
    if (key === name) return value ?? '';
  }
  return null;
}

/** H.264 ranking: packetization-mode=1 first (what WHIP servers forward), then 42e01f. */
function h264Rank(codec) {
  const nonInterleaved = fmtpParam(codec, 'packetization-mode') === '1' ? 0 : 2;
  const profile = (fmtpParam(codec, 'profile-level-id') || '').toLowerCase();
  return nonInterleaved + (profile === H264_PREFERRED_PROFILE ? 0 : 1);
}

/**
 * The codec list for `setCodecPreferences`: every entry of `mimeType` this browser can both
 * send and receive (the spec checks preferences against the receiver's capabilities, newer
 * browsers against the sender's), best first, followed by the rtx entries so retransmissions
 * keep working. Empty when the browser cannot send `mimeType`.
 */
export function codecPreferences(mimeType) {
  const wanted = mimeType.toLowerCase();
  const send = RTCRtpSender.getCapabilities?.('video')?.codecs || [];
  const receive = RTCRtpReceiver.getCapabilities?.('video')?.codecs || [];
  const canSend = (c) =>
    send.some(
      (s) =>
        s.mimeType.toLowerCase() === c.mimeType.toLowerCase() &&
        (s.sdpFmtpLine || '') === (c.sdpFmtpLine || ''),
    );
  const matching = receive.filter((c) => c.mimeType.toLowerCase() === wanted && canSend(c));
  if (matching.length === 0) return [];
  if (wanted === 'video/h264') matching.sort((a, b) => h264Rank(a) - h264Rank(b));
  const rtx = receive.filter((c) => c.mimeType.toLowerCase() === 'video/rtx');
  return [...matching, ...rtx];
}

/** Restricts a video transceiver to one codec; throws when the browser cannot send it. */
function preferCodec(transceiver, codec) {
  const known = VIDEO_CODECS[codec];
  if (!known) throw new GreenroomError(`unknown video codec "${codec}"`, { code: 'codec' });
  const preferences =
    typeof transceiver.setCodecPreferences === 'function' ? codecPreferences(known.mimeType) : [];
  if (preferences.length === 0) {
    throw new GreenroomError(`this browser cannot send ${known.label} video`, { code: 'codec' });
  }
  transceiver.setCodecPreferences(preferences);
}

/**
 * Publishes `stream` (a MediaStream with one video and/or one audio track) over WHIP.
 *
 * @param {object} o
 * @param {string} o.url      WHIP endpoint, e.g. `/whip/{id}`
 * @param {string} o.token    stream key, sent as a bearer token
 * @param {MediaStream} o.stream
 * @param {boolean} [o.simulcast=true]  send the q/h/f ladder instead of one encoding
 * @param {'vp8'|'h264'} [o.codec]  the only video codec offered (none = the browser's choice);
 *   H.264 offers packetization-mode=1 profiles first, 42e01f first among them
 * @param {RTCIceServer[]} [o.iceServers]
 * @returns {Promise<{pc: RTCPeerConnection, sessionUrl: string|null, etag: string|null, stop: () => Promise<void>}>}
 */
export async function whipPublish({
  url,
  token,
  stream,
  simulcast = true,
  codec,
  iceServers = [],
}) {
  const pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' });
  try {
    const [video] = stream.getVideoTracks();
    const [audio] = stream.getAudioTracks();
    if (video) {
      const init = { direction: 'sendonly', streams: [stream] };
      if (simulcast) {
        init.sendEncodings = SIMULCAST_ENCODINGS.map((e) => ({ ...e }));
      } else {
        init.sendEncodings = [{ maxBitrate: 2_500_000 }];
      }
      const transceiver = pc.addTransceiver(video, init);
      if (codec) preferCodec(transceiver, codec);
      if (simulcast) await keepResolution(transceiver.sender);
    }
    if (audio) {
      pc.addTransceiver(audio, { direction: 'sendonly', streams: [stream] });
    }
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const { sessionUrl, etag } = await negotiate(pc, url, headers);
    return {
      pc,
      sessionUrl,
      etag,
      stop: () => endSession(pc, sessionUrl),
    };
  } catch (err) {
    pc.close();
    throw err;
  }
}

/**
 * Plays a stream over WHEP: one recvonly audio and one recvonly video transceiver.
 *
 * @param {object} o
 * @param {string} o.url       WHEP endpoint, e.g. `/whep/{id}`
 * @param {string} [o.layer]   highest simulcast layer wanted: `q`, `h` or `f` (none = highest)
 * @param {string} [o.token]   playback token of a paid stream, sent as a bearer token
 * @param {(track: MediaStreamTrack, streams: readonly MediaStream[]) => void} [o.onTrack]
 * @param {RTCIceServer[]} [o.iceServers]
 * @returns {Promise<{pc: RTCPeerConnection, sessionUrl: string|null, etag: string|null, setLayer: (layer: string) => Promise<void>, stop: () => Promise<void>}>}
 */
export async function whepSubscribe({ url, layer, token, onTrack, iceServers = [] }) {
  const pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' });
  try {
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addTransceiver('video', { direction: 'recvonly' });
    if (onTrack) pc.addEventListener('track', (ev) => onTrack(ev.track, ev.streams));
    const target = new URL(url, document.baseURI);
    if (layer) target.searchParams.set('layer', layer);
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const { sessionUrl, etag } = await negotiate(pc, target.href, headers);
    return {
      pc,
      sessionUrl,
      etag,
      setLayer: (next) => setLayer(sessionUrl, next),
      stop: () => endSession(pc, sessionUrl),
    };
  } catch (err) {
    pc.close();
    throw err;
  }
}

/** `PATCH`es a WHEP viewer's session with a JSON change. */
async function patchSession(sessionUrl, change) {
  if (!sessionUrl) throw new GreenroomError('no session');
  let response;
  try {
    response = await fetch(sessionUrl, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(change),
    });
  } catch (err) {
    throw new GreenroomError(`cannot reach the server (${err.message})`);
  }
  if (!response.ok) throw await errorFromResponse(response);
}

/** Changes a WHEP viewer's highest layer (`PATCH` with `{"layer": "q"|"h"|"f"}`). */
export function setLayer(sessionUrl, layer) {
  return patchSession(sessionUrl, { layer });
}

/**
 * Keeps a paid stream's WHEP session going with a fresh playback token (`PATCH` with
 * `{"token": ...}`): the server ends a session when its token runs out.
 */
export function renewSession(sessionUrl, token) {
  return patchSession(sessionUrl, { token });
}

/** The stream id from a page path such as `/studio/{id}` or `/watch/{id}`. */
export function streamIdFromPath(pathname = location.pathname) {
  const parts = pathname.split('/').filter(Boolean);
  return parts.length >= 2 ? decodeURIComponent(parts[1]) : '';
}

/**
 * Public status of a stream: `{id, title, status, viewers, channel, access, price_tokens,
 * scheduled_at, ...}`.
 */
export async function fetchStatus(id) {
  const response = await fetch(`/api/v1/streams/${encodeURIComponent(id)}/status`, {
    cache: 'no-store',
  });
  if (!response.ok) throw await errorFromResponse(response);
  return response.json();
}

/** Formats bits per second for people. */
export function formatBitrate(bps) {
  if (!Number.isFinite(bps) || bps <= 0) return '0 kb/s';
  if (bps >= 1_000_000) return `${(bps / 1_000_000).toFixed(2)} Mb/s`;
  return `${Math.round(bps / 1000)} kb/s`;
}
