#!/usr/bin/env bash
# The HLS ladder's transcode speed and CPU, greenroom against the ffmpeg CLI on the same input.
#
#   scripts/transcode-report.sh [SECONDS] [PRESET]
#
# Makes a 1080p30 H.264 (B-frames, 2 s GOP) + AAC clip of SECONDS (default 30) in MPEG-TS,
# then packages it as fast as possible:
#   - greenroom: `hls-ladder` (release build): the source passed through as 1080p, decoded
#     once, scaled and encoded to 720p/480p/360p with libx264 PRESET (default superfast),
#     AAC passed through, fMP4 segments and parts, thumbnails;
#   - ffmpeg: the same ladder from one decode (split + scale, libx264 with the same preset,
#     tune zerolatency and bitrates, 2 s GOPs), into fMP4 HLS.
# Prints both JSON lines and the speed ratio.
set -euo pipefail

seconds="${1:-30}"
preset="${2:-superfast}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/greenroom-target}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

ffmpeg -hide_banner -loglevel error -f lavfi -i "testsrc2=size=1920x1080:rate=30" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000" -t "$seconds" \
  -c:v libx264 -preset veryfast -g 60 -bf 2 -b:v 6M -pix_fmt yuv420p -c:a aac -b:a 128k \
  -f mpegts "$work/in.ts"

cargo build --release -q -p greenroom-benches --bin hls-ladder
ours="$("$target/release/hls-ladder" "$work/in.ts" "$preset")"
echo "$ours"

x264="-preset $preset -tune zerolatency -x264-params keyint=60:min-keyint=60:scenecut=0"
start=$(date +%s.%N)
/usr/bin/time -f '%U %S' -o "$work/ffmpeg.time" ffmpeg -hide_banner -loglevel error -y -i "$work/in.ts" \
  -filter_complex "[0:v]split=3[a][b][c];[a]scale=1280:720[v1];[b]scale=852:480[v2];[c]scale=640:360[v3]" \
  -map 0:v -map 0:a -map "[v1]" -map 0:a -map "[v2]" -map 0:a -map "[v3]" -map 0:a \
  -c:v:0 copy -c:a copy -bsf:a aac_adtstoasc \
  -c:v:1 libx264 $x264 -profile:v:1 high -b:v:1 2800k -maxrate:v:1 4200k -bufsize:v:1 5600k \
  -c:v:2 libx264 $x264 -profile:v:2 high -b:v:2 1400k -maxrate:v:2 2100k -bufsize:v:2 2800k \
  -c:v:3 libx264 $x264 -profile:v:3 high -b:v:3 800k -maxrate:v:3 1200k -bufsize:v:3 1600k \
  -f hls -hls_segment_type fmp4 -hls_time 2 -hls_playlist_type vod \
  -var_stream_map "v:0,a:0 v:1,a:1 v:2,a:2 v:3,a:3" \
  -master_pl_name master.m3u8 "$work/out_%v.m3u8"
end=$(date +%s.%N)
read -r user sys <"$work/ffmpeg.time"
wall=$(echo "$end - $start" | bc -l)
cpu=$(echo "$user + $sys" | bc -l)
speed=$(echo "$seconds / $wall" | bc -l)
printf '{"tool":"ffmpeg","preset":"%s","media_s":%s,"wall_s":%.2f,"speed_x":%.2f,"cpu_s":%.2f,"cores_at_real_time":%.3f}\n' \
  "$preset" "$seconds" "$wall" "$speed" "$cpu" "$(echo "$cpu / $seconds" | bc -l)"
ours_speed=$(echo "$ours" | sed -E 's/.*"speed_x":([0-9.]+).*/\1/')
printf 'greenroom / ffmpeg speed ratio: %.2f\n' "$(echo "$ours_speed / $speed" | bc -l)"
