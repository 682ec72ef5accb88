#!/usr/bin/env bash
# setup.sh installs what vidpipe needs on a Debian 12 machine. It is idempotent:
# a second run only checks that everything is in place.
#
#   scripts/setup.sh          runtime: FFmpeg libraries, ONNX Runtime, sample videos
#   scripts/setup.sh --test   also the test oracles (python3-torch, onnx, opencv)
#
# Everything downloaded lands in $VIDPIPE_CACHE (default ~/.cache/vidpipe).
set -euo pipefail

test_deps=0
[[ "${1:-}" == "--test" ]] && test_deps=1

cache="${VIDPIPE_CACHE:-$HOME/.cache/vidpipe}"
ort_version=1.24.1
mkdir -p "$cache"

log() { printf 'setup: %s\n' "$*" >&2; }

sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)

apt_pkgs=(pkg-config gcc ffmpeg
  libavcodec-dev libavformat-dev libavfilter-dev libavdevice-dev
  libswscale-dev libswresample-dev libavutil-dev)
# npm fetches ONNX Runtime; a machine with Node.js from elsewhere already has it.
command -v npm >/dev/null || apt_pkgs+=(npm)
if (( test_deps )); then
  apt_pkgs+=(python3-torch python3-torchvision python3-onnx python3-opencv python3-numpy)
fi

missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  log "installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ONNX Runtime: the npm package onnxruntime-node ships the shared library.
ort_dir="$cache/onnxruntime-$ort_version"
if [[ ! -f "$ort_dir/libonnxruntime.so.1" ]]; then
  log "fetching onnxruntime-node@$ort_version"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ort_version" >/dev/null)
  tar -xzf "$tmp"/onnxruntime-node-*.tgz -C "$tmp" package/bin/napi-v6/linux/x64
  mkdir -p "$ort_dir"
  cp "$tmp"/package/bin/napi-v6/linux/x64/libonnxruntime.so.1* "$ort_dir/"
  rm -rf "$tmp"
fi

# Sample videos: Debian's opencv-doc ships vtest.avi, Megamind.avi, Megamind_bugy.avi, tree.avi.
video_dir="$cache/videos"
if [[ ! -f "$video_dir/vtest.avi" ]]; then
  log "extracting sample videos from opencv-doc"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download opencv-doc >/dev/null 2>&1 || { "${sudo_cmd[@]}" apt-get update -qq && apt-get download opencv-doc >/dev/null; })
  dpkg -x "$tmp"/opencv-doc_*.deb "$tmp/x"
  mkdir -p "$video_dir"
  for v in vtest.avi Megamind.avi Megamind_bugy.avi tree.avi; do
    f=$(find "$tmp/x" -name "$v" | head -n1)
    if [[ "$f" == *.gz ]]; then gunzip -c "$f" >"$video_dir/$v"; else cp "$f" "$video_dir/$v"; fi
  done
  rm -rf "$tmp"
fi

# versitygw: the real S3 server that storage tests run against (internal/s3test).
if (( test_deps )); then
  vgw="$(go env GOPATH)/bin/versitygw"
  if [[ ! -x "$vgw" ]]; then
    log "installing versitygw v1.8.0 (go install, about a minute)"
    go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
  fi
fi

log "ready: ONNX Runtime in $ort_dir, videos in $video_dir"
