#!/usr/bin/env bash
# Installs the Debian 12 packages greenroom needs, skipping what is already there.
#
#   scripts/install-deps.sh build   # to build and run: compilers, pkg-config, clang, cmake
#   scripts/install-deps.sh test    # to test: Chromium, ffmpeg, PostgreSQL, Redis (+ build)
#   scripts/install-deps.sh         # same as `test`: everything
#
# Runs as root (or through sudo). The Rust toolchain and Node.js are not installed here:
# it checks they are present and stops with a clear message when they are not.
set -euo pipefail

what="${1:-all}"
# libav*-dev: ffmpeg-sys-next (bindgen over FFmpeg 5.1) for the AAC->Opus / H.264 transcoders.
build_pkgs=(build-essential pkg-config clang libclang-dev cmake
  libavcodec-dev libavformat-dev libavutil-dev libswresample-dev libswscale-dev libavfilter-dev libavdevice-dev)
# python3-gi + gst-rtsp-server + plugins: scripts/rtsp-test-server.py (RTSP pull tests).
# iproute2 + nftables: viewers in network namespaces with rate limits (tc) and random loss
# (nft) in tests/browser/network.test.js.
test_pkgs=(chromium ffmpeg postgresql redis-server
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  iproute2 nftables)

case "$what" in
  build) pkgs=("${build_pkgs[@]}") ;;
  test | all) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  *)
    echo "usage: $0 [build|test|all]" >&2
    exit 2
    ;;
esac

fail() {
  echo "install-deps: $*" >&2
  exit 1
}

# --- Rust toolchain (cannot be downloaded by this script) ----------------------------------
if ! command -v cargo >/dev/null 2>&1; then
  fail "cargo not found. Install the Rust toolchain (rustup, stable >= 1.88) and put ~/.cargo/bin on PATH."
fi
if [[ "$what" != build ]]; then
  cargo fmt --version >/dev/null 2>&1 || fail "rustfmt missing: rustup component add rustfmt"
  cargo clippy --version >/dev/null 2>&1 || fail "clippy missing: rustup component add clippy"
  # --- Node.js for the browser tests ------------------------------------------------------
  command -v node >/dev/null 2>&1 || fail "node not found: the browser tests need Node.js >= 20 with npm."
  command -v npm >/dev/null 2>&1 || fail "npm not found: the browser tests need Node.js >= 20 with npm."
  node_major="$(node -p 'process.versions.node.split(".")[0]')"
  ((node_major >= 20)) || fail "Node.js $(node --version) is too old: the browser tests need >= 20."
fi

# --- Debian packages -----------------------------------------------------------------------
missing=()
for pkg in "${pkgs[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all $what packages present"
  exit 0
fi

sudo=()
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null 2>&1 || fail "need root to install: ${missing[*]}"
  sudo=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
