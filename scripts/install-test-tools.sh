#!/usr/bin/env bash
# Installs the tools some Rust tests start as real servers, skipping what is already there.
#
#   scripts/install-test-tools.sh
#
# Today: s3s-fs (an S3-compatible server over a directory, checks SigV4 signatures), for
# crates/storage/tests/s3_compatible.rs. Installed from crates.io with `cargo install` into
# ${GREENROOM_TOOLS_DIR:-$HOME/.cache/greenroom-tools}/bin; the tests look for it there (or at
# $GREENROOM_S3S_FS). The first install compiles for a few minutes; later runs return at once.
set -euo pipefail

tools_dir="${GREENROOM_TOOLS_DIR:-$HOME/.cache/greenroom-tools}"
s3s_fs_version="0.14.1"

fail() {
  echo "install-test-tools: $*" >&2
  exit 1
}

command -v cargo >/dev/null 2>&1 ||
  fail "cargo not found. Install the Rust toolchain (rustup) and put ~/.cargo/bin on PATH."

# install_crate NAME VERSION BIN [CARGO-INSTALL-ARGS...]: cargo install NAME@VERSION unless BIN
# is already there at that version.
install_crate() {
  local name="$1" version="$2" bin="$3"
  shift 3
  local features=("$@")
  local path="$tools_dir/bin/$bin"
  local stamp="$tools_dir/.$bin.version"
  if [[ -x "$path" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then
    echo "install-test-tools: $bin $version already at $path"
    return 0
  fi
  echo "install-test-tools: installing $name@$version into $tools_dir (compiles, a few minutes)"
  # A throw-away target dir: never the workspace's (CARGO_TARGET_DIR may be exported by make),
  # so this build neither waits on its lock nor leaves 400 MB behind.
  local target
  target="$(mktemp -d "${TMPDIR:-/tmp}/greenroom-tools-build.XXXXXX")"
  trap "rm -rf '$target'" EXIT
  if ! CARGO_TARGET_DIR="$target" cargo install "$name@$version" "${features[@]}" --locked --root "$tools_dir"; then
    echo "install-test-tools: --locked install failed, retrying without --locked" >&2
    CARGO_TARGET_DIR="$target" cargo install "$name@$version" "${features[@]}" --root "$tools_dir" ||
      fail "cargo install $name@$version failed"
  fi
  [[ -x "$path" ]] || fail "$name installed but $path is missing"
  echo "$version" >"$stamp"
  echo "install-test-tools: $bin $version at $path"
}

# The s3s-fs binary needs the crate's `binary` feature (clap, hyper-util, tokio/full).
install_crate s3s-fs "$s3s_fs_version" s3s-fs --features binary
