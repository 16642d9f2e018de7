#!/usr/bin/env bash
# The fan-out scenario: starts a release greenroom on loopback, publishes one 3-layer simulcast
# stream of real VP8 (the clips of scripts/load-media.sh, made on first use), attaches N WHEP
# subscribers with greenroom-load on the same machine, and reports
#   - what the subscribers received (bitrate, loss) — greenroom-load's JSON summary,
#   - the server's CPU time per forwarded packet (utime+stime over the measured window divided by
#     the packets the subscribers received in that window),
#   - the server's resident memory per subscriber (RSS with N subscribers minus RSS before), and
#     how many viewers the server carries without webrtc-rs by then (greenroom_viewers_detached),
#   - the subscribers by the width of their last key frame (their layer), and the load tool's
#     own CPU over the window (it shares the machine: when both are near the core count, the
#     figures measure the machine, not the server).
# The HLS transcoder is off: this measures the forwarding unit alone.
#
# Usage: benches/fanout.sh [SUBSCRIBERS] [SECONDS] [LAYER]     (or: make fanout FANOUT_ARGS="...")
#   e.g. benches/fanout.sh 250 20 f
# MEDIA=q.ivf,h.ivf,f.ivf selects other clips; MEDIA=synthetic publishes synthetic frames.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${1:-100}
SECONDS_MEASURED=${2:-20}
LAYER=${3:-f}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/greenroom-target}
cargo build --release -q -p greenroom -p greenroom-load
BIN=$CARGO_TARGET_DIR/release
if [ -z "${MEDIA:-}" ]; then
  CLIPS=$HOME/.cache/greenroom-load-media
  [ -s "$CLIPS/f.ivf" ] || scripts/load-media.sh "$CLIPS" >/dev/null
  MEDIA=$CLIPS/q.ivf,$CLIPS/h.ivf,$CLIPS/f.ivf
fi
[ "$MEDIA" = synthetic ] && MEDIA=

DATA=$(mktemp -d)
PORT=$((20000 + RANDOM % 20000))
UDP=$((40000 + RANDOM % 20000))
TOKEN=fanout-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
GREENROOM_DATA_DIR=$DATA GREENROOM_HTTP_ADDR=127.0.0.1:$PORT GREENROOM_RTC_UDP_PORT=$UDP \
GREENROOM_RTC_BIND_IP=127.0.0.1 GREENROOM_RTMP_ADDR=off GREENROOM_HLS=false GREENROOM_ADMIN_TOKEN=$TOKEN GREENROOM_LOG=warn \
  "$BIN/greenroom" serve > "$DATA/stdout.log" 2> "$DATA/server.log" &
SERVER=$!
cleanup() { kill -TERM $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
STREAM=$(curl -sf -X POST "http://127.0.0.1:$PORT/api/v1/streams" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"title":"fanout"}')
ID=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$STREAM")
KEY=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["stream_key"])' "$STREAM")

ticks() { awk '{print $14 + $15}' "/proc/${1:-$SERVER}/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$SERVER/status"; }
HZ=$(getconf CLK_TCK)
RSS0=$(rss_kib)

# greenroom-load waits for everyone to connect, settles 2 s, then measures SECONDS_MEASURED s.
"$BIN/greenroom-load" --server "http://127.0.0.1:$PORT" --stream "$ID" --publish-key "$KEY" \
  --subscribers "$N" --layer "$LAYER" --duration "$SECONDS_MEASURED" --threads 1 \
  ${MEDIA:+--media "$MEDIA"} > "$DATA/report.json" &
LOAD=$!
# Sample the server over the same window as the load tool: wait until all subscribers are in.
for _ in $(seq 600); do
  V=$(curl -sf "http://127.0.0.1:$PORT/api/v1/streams/$ID/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["viewers"])')
  [ "$V" -ge "$N" ] && break; sleep 0.2
done
sleep 4
T0=$(ticks); L0=$(ticks $LOAD); RSS1=$(rss_kib); START=$(date +%s.%N)
DETACHED=$(curl -sf "http://127.0.0.1:$PORT/metrics" | awk '/^greenroom_viewers_detached / {print $2}')
sleep $((SECONDS_MEASURED - 4))
T1=$(ticks); L1=$(ticks $LOAD); END=$(date +%s.%N)
wait $LOAD
python3 - "$DATA/report.json" "$T0" "$T1" "$HZ" "$START" "$END" "$RSS0" "$RSS1" "$N" "${DETACHED:-0}" "$L0" "$L1" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
t0, t1, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
start, end = float(sys.argv[5]), float(sys.argv[6])
rss0, rss1, n = int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
detached = int(sys.argv[10])
load_cpu = (int(sys.argv[12]) - int(sys.argv[11])) / hz
s = report["summary"]
window = end - start
cpu = (t1 - t0) / hz
pps = sum(x["packets"] for x in report["subscribers"]) / s["duration_s"]
print(json.dumps({
    "subscribers": n,
    "connected": s["connected"],
    "mean_bitrate_kbps": round(s["mean_bitrate_bps"] / 1000),
    "min_bitrate_kbps": round(s["min_bitrate_bps"] / 1000),
    "mean_loss_percent": s["mean_loss_percent"],
    "under_1_percent_loss": s["under_1_percent_loss"],
    "server_cpu_cores": round(cpu / window, 2),
    "forwarded_packets_per_s": round(pps),
    "server_cpu_us_per_forwarded_packet": round(cpu / window / pps * 1e6, 2) if pps else None,
    "server_rss_mib": round(rss1 / 1024, 1),
    "server_rss_kib_per_subscriber": round((rss1 - rss0) / n, 1),
    "viewers_detached": detached,
    "subscribers_by_keyframe_width": s["by_width"],
    "load_tool_cpu_cores": round(load_cpu / window, 2),
}, indent=2))
PY
