#!/usr/bin/env bash
# Server CPU for one live stream with HLS: a release server, ffmpeg publishing over RTMP.
#
#   scripts/hls-cpu-report.sh [SECONDS] [SIZE] [PRESET]
#
# ffmpeg (a separate process, not counted) publishes a SIZE (default 1920x1080) 30 fps H.264
# (2 s GOP, B-frames) + AAC test pattern for SECONDS (default 40); the server makes the HLS
# ladder with libx264 PRESET (default superfast) and records it to local storage. The server's
# CPU is read from /proc over the steady middle of the run and printed in cores, once with
# HLS on and once with HLS off (WebRTC only) for comparison.
set -euo pipefail

seconds="${1:-40}"
size="${2:-1920x1080}"
preset="${3:-superfast}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/greenroom-target}"
cargo build --release -q -p greenroom
bin="$target/release/greenroom"

measure() {
  local hls="$1" dir port token out pid base stream rtmp ffpid t0 t1 c0 c1
  dir="$(mktemp -d)"
  token="cpu-report-token-0123456789abcdef"
  out="$dir/stdout"
  GREENROOM_DATA_DIR="$dir" GREENROOM_HTTP_ADDR=127.0.0.1:0 GREENROOM_RTMP_ADDR=127.0.0.1:0 \
    GREENROOM_RTC_UDP_PORT=0 GREENROOM_RTC_BIND_IP=127.0.0.1 GREENROOM_ADMIN_TOKEN="$token" \
    GREENROOM_HLS="$hls" GREENROOM_HLS_PRESET="$preset" GREENROOM_LOG=warn \
    "$bin" serve >"$out" 2>"$dir/log" &
  pid=$!
  for _ in $(seq 100); do grep -q 'listening on' "$out" 2>/dev/null && break; sleep 0.1; done
  base="$(sed -n 's/^greenroom listening on \([^ ]*\).*/\1/p' "$out")"
  stream="$(curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"title":"cpu"}' "$base/api/v1/streams")"
  rtmp="$(echo "$stream" | sed -E 's/.*"rtmp_url":"([^"]+)".*/\1/')"
  ffmpeg -hide_banner -loglevel error -re -f lavfi -i "testsrc2=size=$size:rate=30" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -t "$seconds" -c:v libx264 \
    -preset ultrafast -g 60 -bf 2 -pix_fmt yuv420p -c:a aac -f flv "$rtmp" </dev/null &
  ffpid=$!
  sleep 8
  c0=$(awk '{print $14+$15}' "/proc/$pid/stat"); t0=$(date +%s.%N)
  sleep $((seconds - 12))
  c1=$(awk '{print $14+$15}' "/proc/$pid/stat"); t1=$(date +%s.%N)
  wait "$ffpid" || true
  kill -TERM "$pid"; wait "$pid" || true
  printf '{"hls":%s,"size":"%s","preset":"%s","server_cores":%.3f}\n' "$hls" "$size" "$preset" \
    "$(echo "($c1 - $c0) / 100 / ($t1 - $t0)" | bc -l)"
  rm -rf "$dir"
}

measure true
measure false
