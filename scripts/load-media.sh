#!/usr/bin/env bash
# Makes the VP8 clips greenroom-load publishes with --media: three simulcast layers of an
# ffmpeg test pattern, 30 fps, a key frame every 2 s, looped by the load tool.
#
# Usage: scripts/load-media.sh [DIR] [SECONDS]     (default: ~/.cache/greenroom-load-media 10)
# Then:  greenroom-load --media DIR/q.ivf,DIR/h.ivf,DIR/f.ivf ...
set -euo pipefail
DIR=${1:-$HOME/.cache/greenroom-load-media}
SECONDS_LONG=${2:-10}
mkdir -p "$DIR"
for spec in "q 320x180 150k" "h 640x360 500k" "f 1280x720 1500k"; do
  read -r layer size rate <<<"$spec"
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=$size:rate=30" \
    -t "$SECONDS_LONG" -c:v libvpx -deadline realtime -cpu-used 8 \
    -b:v "$rate" -maxrate "$rate" -bufsize "$rate" -g 60 -keyint_min 60 -auto-alt-ref 0 \
    "$DIR/$layer.ivf"
done
echo "$DIR/q.ivf,$DIR/h.ivf,$DIR/f.ivf"
