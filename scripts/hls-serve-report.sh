#!/usr/bin/env bash
# What HLS serving costs: a release server with one live 720p RTMP stream (ffmpeg), hammered by
# wrk with CONNECTIONS concurrent clients on a part, a segment and a media playlist.
#
#   scripts/hls-serve-report.sh [CONNECTIONS] [SECONDS]
#
# Prints wrk's requests/s and latency for each, and the server's CPU (cores) meanwhile. An
# LL-HLS player makes about 4 requests/s (a blocking playlist reload and a part every 0.5 s),
# an ordinary HLS player about 1 (a playlist and a segment every 2 s).
set -euo pipefail

connections="${1:-300}"
seconds="${2:-10}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/greenroom-target}"
command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q -p greenroom
dir="$(mktemp -d)"
token="serve-report-token-0123456789abcdef"
GREENROOM_DATA_DIR="$dir" GREENROOM_HTTP_ADDR=127.0.0.1:0 GREENROOM_RTMP_ADDR=127.0.0.1:0 \
  GREENROOM_RTC_UDP_PORT=0 GREENROOM_RTC_BIND_IP=127.0.0.1 GREENROOM_ADMIN_TOKEN="$token" \
  GREENROOM_HLS_PRESET=ultrafast GREENROOM_LOG=warn \
  "$target/release/greenroom" serve >"$dir/stdout" 2>"$dir/log" &
pid=$!
cleanup() { kill -TERM "$pid" 2>/dev/null || true; kill "$ffpid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
ffpid=0
trap cleanup EXIT
for _ in $(seq 100); do grep -q 'listening on' "$dir/stdout" 2>/dev/null && break; sleep 0.1; done
base="$(sed -n 's/^greenroom listening on \([^ ]*\).*/\1/p' "$dir/stdout")"
stream="$(curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"title":"serve","record":false}' "$base/api/v1/streams")"
rtmp="$(echo "$stream" | sed -E 's/.*"rtmp_url":"([^"]+)".*/\1/')"
hls="$(echo "$stream" | sed -E 's/.*"hls_url":"([^"]+)".*/\1/')"
ffmpeg -hide_banner -loglevel error -re -f lavfi -i "testsrc2=size=1280x720:rate=30" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000" -t $((seconds * 3 + 30)) -c:v libx264 \
  -preset ultrafast -g 60 -pix_fmt yuv420p -c:a aac -f flv "$rtmp" </dev/null &
ffpid=$!
master="$(curl -sf "$hls")"
variant="$(echo "$master" | grep -v '^#' | grep 360p | head -1)"
media="${hls%master.m3u8}$variant"
sleep 6
playlist="$(curl -sf "$media")"
segment="${media%index.m3u8}$(echo "$playlist" | grep '^seg' | tail -1)"
part_name="$(echo "$playlist" | grep '#EXT-X-PART:' | tail -1 | sed -E 's/.*URI="([^"]+)".*/\1/')"
part="${media%index.m3u8}$part_name"
echo "segment: $(curl -sf "$segment" | wc -c) bytes, part: $(curl -sf "$part" | wc -c) bytes"
for what in part segment playlist; do
  case "$what" in
    part) url="$part" ;;
    segment) url="$segment" ;;
    playlist) url="$media" ;;
  esac
  c0=$(awk '{print $14+$15}' "/proc/$pid/stat"); t0=$(date +%s.%N)
  out="$(wrk -t2 -c"$connections" -d"${seconds}s" --latency "$url")"
  c1=$(awk '{print $14+$15}' "/proc/$pid/stat"); t1=$(date +%s.%N)
  rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
  p50="$(echo "$out" | awk '$1=="50%" {print $2}')"
  p99="$(echo "$out" | awk '$1=="99%" {print $2}')"
  errors="$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')"
  printf '{"what":"%s","connections":%s,"requests_per_s":%s,"p50":"%s","p99":"%s","server_cores":%.2f,"errors":"%s"}\n' \
    "$what" "$connections" "$rps" "$p50" "$p99" "$(echo "($c1 - $c0) / 100 / ($t1 - $t0)" | bc -l)" "$errors"
done
