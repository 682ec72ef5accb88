#!/usr/bin/env bash
# gpu-pack.sh prepares vidpipe's one-shot CUDA proof for a GPU machine whose
# calls carry at most 64 MiB each, working tree included: it packs an ONNX
# Runtime GPU build, the model/bench test binary, vidpipe itself built
# against a static FFmpeg (vidpipe-gpu, with that build's ffmpeg and
# ffprobe, which `vidpipe bench` runs) and an H.264 clip to bench on into
# parts .gpu/p1 .. .gpu/pN (ignored by git), checks that
# scripts/gpu-check.sh reassembles them, and prints the device calls to
# make, in order, on one warm machine.
#
# The ONNX Runtime build, 1.29.0, comes from npm, which this machine reaches:
#   - onnxruntime-node@1.29.0: libonnxruntime.so.1, a GPU build (the CUDA
#     provider bridge compiled in; npm's install script would fetch the
#     provider libraries from NuGet, which this machine does not reach);
#   - com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9: the provider libraries
#     of the official 1.29.0 CUDA 13 release (libonnxruntime_providers_cuda.so,
#     229 MB, and libonnxruntime_providers_shared.so).
# The bridge between the runtime and a provider is a C++ interface that only
# libraries of one ONNX Runtime version (and the same CUDA switch) may cross:
# the runtime says git-commit-id=2e2543fbe9, the v1.29.0 release's commit,
# and the asus4 package ships v1.29.0's release libraries. The pack pins the
# three files by sha256. (com.github.asus4.onnxruntime@0.4.9's own
# libonnxruntime.so, the same commit, is a CPU-only build: "CUDA execution
# provider is not enabled in this build".) CUDA 13 and cuDNN 9 themselves
# come from the GPU machine's python packages.
#
# vidpipe-gpu comes from scripts/ffmpeg-static.sh (Debian's FFmpeg 5.1.9
# source, built once in 4 to 11 minutes on 2 shared cores): Debian's would be
# 213 shared libraries. It, ffmpeg and ffprobe need only glibc; glibc.txt
# (in p1, so that the first call's --probe can compare) says the newest
# GLIBC_ symbol version each packed binary needs. The clip is vtest.avi
# (from scripts/setup.sh) played four times, 3,180 frames of 768x576, as
# H.264 (libx264 of this machine's ffmpeg CLI, -crf GPU_CLIP_CRF, default
# 28: 7 MiB; 23 would make 17 MiB).
#
# Parts: the xz stream of the ONNX Runtime libraries is cut into slices as
# large as a call carries beside the working tree (less 2 MiB of room for
# it to grow); the other files fill the last slice's part and, when they do
# not fit, one more part, which also holds the manifests, so that a rebuilt
# binary only changes the last calls.
#
#   scripts/gpu-pack.sh      GPU_PART_MIB sets a smaller slice size (MiB)
set -euo pipefail

root=$(git rev-parse --show-toplevel)
cache="${VIDPIPE_CACHE:-$HOME/.cache/vidpipe}/ortgpu-1.29.0"
dest=$root/.gpu
call_mib=64   # what one device call may carry, working tree included
margin_mib=2  # room for the working tree to grow before the calls
clip_crf=${GPU_CLIP_CRF:-28}
videos=${VIDPIPE_CACHE:-$HOME/.cache/vidpipe}/videos
commit=2e2543fbe9

# npm packages and their registry sha1 (dist.shasum), so that a truncated
# or altered download is caught here rather than on the GPU machine.
node_pkg=onnxruntime-node@1.29.0
node_tgz=onnxruntime-node-1.29.0.tgz
node_sha1=46a58908ca4636fb80a37f9e2d05eef66ca32ace
gpu_pkg=com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9
gpu_tgz=com.github.asus4.onnxruntime.linux-x64-gpu-0.4.9.tgz
gpu_sha1=4fba8272b000ed4b6789715f67b67d2447fab198

log() { printf 'gpu-pack: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }

mkdir -p "$cache"
cd "$cache"

fetch() { # fetch PKG TGZ SHA1
  if [[ ! -f "$2" ]] || [[ $(sha1sum "$2" | cut -d' ' -f1) != "$3" ]]; then
    log "fetching $1"
    rm -f "$2"
    npm pack --silent --pack-destination . "$1" >/dev/null
  fi
  [[ $(sha1sum "$2" | cut -d' ' -f1) == "$3" ]] || die "$2: sha1 is not the registry's $3"
}
fetch "$node_pkg" "$node_tgz" "$node_sha1"
fetch "$gpu_pkg" "$gpu_tgz" "$gpu_sha1"

# The libraries, under the names ONNX Runtime looks for: the providers
# beside libonnxruntime.so.1.
if [[ ! -f lib/.done ]]; then
  log "extracting the libraries"
  rm -rf lib x && mkdir -p lib x
  tar -xzf "$node_tgz" -C x package/bin/napi-v6/linux/x64/libonnxruntime.so.1
  tar -xzf "$gpu_tgz" -C x package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so \
    package/Plugins/Linux/x64/libonnxruntime_providers_shared.so
  mv x/package/bin/napi-v6/linux/x64/libonnxruntime.so.1 x/package/Plugins/Linux/x64/*.so lib/
  rm -rf x
  grep -aq "git-commit-id=$commit" lib/libonnxruntime.so.1 || die "lib/libonnxruntime.so.1 is not ONNX Runtime build $commit"
  (cd lib && sha256sum --quiet -c) <<EOF || die "the libraries are not the ones this script was checked with"
89688f5cf51c7e31befbb7b9101bc027799009b18d1baa9a5b1146a72e69538d  libonnxruntime.so.1
56cf3254b118ad837ccc4ed8f6d1b23504bbf7ef91b34cbc0b289cb7f10b3037  libonnxruntime_providers_cuda.so
c6a12593396095f5670160e284c35d1700b7708cf3037b7042e2a5200ccae772  libonnxruntime_providers_shared.so
EOF
  touch lib/.done
fi
ls -l lib >&2

# One xz stream of the three libraries (CUDA's kernels inside are already
# compressed: 229 MB become about 164 MB). Slow once (minutes), then cached.
bundle=ort.tar.xz
if [[ ! -f $bundle || lib/.done -nt $bundle ]]; then
  log "compressing the libraries (xz -9, a few minutes)"
  tar -C lib -cf - libonnxruntime.so.1 libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so |
    xz -9 -T2 >"$bundle.tmp"
  mv "$bundle.tmp" "$bundle"
fi

# The test binary, built here: the package must not link FFmpeg, which the
# GPU machine lacks.
cd "$root"
if go list -deps ./model/bench | grep -q astiav; then
  die "model/bench depends on go-astiav (FFmpeg): the test binary would not run on the GPU machine"
fi
log "building the model/bench test binary"
CGO_ENABLED=1 go test -c -trimpath -ldflags='-s -w' -o "$cache/bench.test" ./model/bench
# xz_new SRC DST: DST is SRC as xz -9, remade only when SRC is newer (go
# leaves an up-to-date binary alone).
xz_new() {
  if [[ ! -f "$2" || "$1" -nt "$2" ]]; then
    log "compressing $(basename "$1")"
    xz -9 -T2 -c "$1" >"$2.tmp"
    mv "$2.tmp" "$2"
  fi
}
xz_new "$cache/bench.test" "$cache/bench.test.xz"

# vidpipe itself, for `vidpipe bench --device cuda`: linked against a
# static FFmpeg so that it needs only glibc, with that build's ffmpeg and
# ffprobe (the bench runs both; the machine has neither).
log "building vidpipe-gpu against a static FFmpeg (scripts/ffmpeg-static.sh)"
ffprefix=$(bash "$root/scripts/ffmpeg-static.sh" -o "$cache/vidpipe-gpu")
xz_new "$cache/vidpipe-gpu" "$cache/vidpipe-gpu.xz"
if [[ ! -f "$cache/ffmpeg.tar.xz" || "$ffprefix/bin/ffmpeg" -nt "$cache/ffmpeg.tar.xz" ||
  "$ffprefix/bin/ffprobe" -nt "$cache/ffmpeg.tar.xz" ]]; then
  tar -C "$ffprefix/bin" -cf - ffmpeg ffprobe | xz -9 -T2 >"$cache/ffmpeg.tar.xz.tmp"
  mv "$cache/ffmpeg.tar.xz.tmp" "$cache/ffmpeg.tar.xz"
fi

# The newest glibc symbol version each binary needs, for --probe to compare
# with the machine's glibc.
glibc_of() { objdump -T "$1" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n1; }
for b in "$cache/vidpipe-gpu" "$ffprefix/bin/ffmpeg" "$ffprefix/bin/ffprobe" "$cache/bench.test"; do
  echo "$(basename "$b") $(glibc_of "$b")"
done >"$cache/glibc.txt"
cat "$cache/glibc.txt" >&2

# The clip the bench runs on: vtest.avi four times over as H.264, made once.
clip=vtest4-crf$clip_crf.mp4
[[ -f "$videos/vtest.avi" ]] || die "$videos/vtest.avi missing: run scripts/setup.sh"
if [[ ! -f "$cache/$clip" ]]; then
  log "making the clip $clip"
  ffmpeg -nostdin -v error -y -stream_loop 3 -i "$videos/vtest.avi" -an \
    -c:v libx264 -preset veryfast -crf "$clip_crf" "$cache/$clip.tmp.mp4"
  mv "$cache/$clip.tmp.mp4" "$cache/$clip"
fi
log "clip: $(mib "$(stat -c %s "$cache/$clip")") MiB"

# Parts: a part may fill what a call carries beside the working tree
# (tracked files, untracked ones git does not ignore, and shared/), less
# margin_mib; a slice of the bundle leaves 64 KiB of that for glibc.txt and
# the manifests.
tree_bytes=$( (
  git ls-files -z -co --exclude-standard
  if [[ -d shared ]]; then find shared -type f -print0; fi
) | du -cb --files0-from=- | tail -n1 | cut -f1)
room=$((call_mib * 1048576 - tree_bytes - margin_mib * 1048576))
slice=$((room - 65536))
if [[ -n "${GPU_PART_MIB:-}" ]]; then
  ((GPU_PART_MIB * 1048576 <= slice)) || die "GPU_PART_MIB=$GPU_PART_MIB does not fit beside the $(mib "$tree_bytes") MiB working tree: at most $((slice / 1048576))"
  slice=$((GPU_PART_MIB * 1048576))
fi
((slice >= 8 * 1048576)) || die "the working tree ($(mib "$tree_bytes") MiB) leaves a call too little room"
rm -rf "$dest" && mkdir -p "$dest/split"
split -b "$slice" -d -a 1 "$cache/$bundle" "$dest/split/ort.tar.xz.part"
mapfile -t pieces < <(ls "$dest/split")
n=${#pieces[@]}
for i in "${!pieces[@]}"; do
  mkdir -p "$dest/p$((i + 1))"
  mv "$dest/split/${pieces[$i]}" "$dest/p$((i + 1))/"
done
rmdir "$dest/split"
cp "$cache/glibc.txt" "$dest/p1/"
# The other files go into the last part while they fit, then into a new one.
last=$dest/p$n
add() { # add FILE [NAME]
  local used size
  used=$(du -cb "$last"/* | tail -n1 | cut -f1)
  size=$(stat -c %s "$1")
  if ((used + size > room)); then
    n=$((n + 1))
    last=$dest/p$n
    mkdir -p "$last"
  fi
  cp "$1" "$last/${2:-$(basename "$1")}"
}
add "$cache/bench.test.xz"
add "$cache/ffmpeg.tar.xz"
add "$cache/vidpipe-gpu.xz"
add "$cache/$clip" vtest4.mp4
(cd "$dest" && sha256sum p*/* | sed 's| p[0-9]*/| |') >"$dest/PARTS.sha256"
mv "$dest/PARTS.sha256" "$last/"
(
  cd "$cache"
  sha256sum bench.test vidpipe-gpu
  (cd "$ffprefix" && sha256sum bin/ffmpeg bin/ffprobe)
  cd lib && sha256sum libonnxruntime.so.1 libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so | sed 's|  |  ort/|'
) >"$last/FILES.sha256"
for d in "$dest"/p*; do
  b=$(du -cb "$d"/* | tail -n1 | cut -f1)
  if ((b + tree_bytes + 1048576 > call_mib * 1048576)); then
    die "$d with the working tree is $(mib $((b + tree_bytes))) MiB, over what a call carries: rerun with a smaller GPU_PART_MIB"
  fi
done

# Prove the reassembly here: copy the parts into one folder as the device
# calls will, and let gpu-check.sh rebuild and verify the files.
log "checking the reassembly with scripts/gpu-check.sh --assemble-only"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/parts"
cp "$dest"/p*/* "$tmp/parts/"
GPU_WORK=$tmp/work OUT=$tmp/out bash "$root/scripts/gpu-check.sh" --assemble-only "$tmp/parts" >"$tmp/assemble.log" 2>&1 ||
  die "reassembly failed: $(tail -n5 "$tmp/assemble.log")"
cmp "$tmp/work/ort/libonnxruntime_providers_cuda.so" "$cache/lib/libonnxruntime_providers_cuda.so"
cmp "$tmp/work/bench.test" "$cache/bench.test"
cmp "$tmp/work/vidpipe-gpu" "$cache/vidpipe-gpu"
cmp "$tmp/work/bin/ffmpeg" "$ffprefix/bin/ffmpeg"
cmp "$tmp/work/vtest4.mp4" "$cache/$clip"
log "reassembly verified (sha256 of every part and file)"

echo
echo "Working tree that travels with every call: $(mib "$tree_bytes") MiB. Parts:"
for ((k = 1; k <= n; k++)); do
  b=$(du -cb "$dest/p$k"/* | tail -n1 | cut -f1)
  printf '  .gpu/p%d  %6s MiB  (%s MiB with the tree)  %s\n' "$k" "$(mib "$b")" "$(mib $((b + tree_bytes)))" "$(cd "$dest/p$k" && printf '%s ' *)"
done
echo
echo "Device calls, in this order, each right after the last (the machine stays warm 30 s; files under /tmp survive between calls on it):"
for ((k = 1; k <= n; k++)); do
  cmd="mkdir -p /tmp/gpu && cp .gpu/p$k/* /tmp/gpu/ && ls -l /tmp/gpu"
  limit=120
  ((k == 1)) && cmd="$cmd && bash scripts/gpu-check.sh --probe /tmp/gpu"
  if ((k == n)); then
    cmd="mkdir -p /tmp/gpu && cp .gpu/p$k/* /tmp/gpu/ && bash scripts/gpu-check.sh /tmp/gpu"
    limit=480
  fi
  printf '  %d. carry: [".gpu/p%d"]  timeout_s: %d\n     command: %s\n' "$k" "$k" "$limit" "$cmd"
done
echo
echo "If the last call says parts are missing, the machine was fresh: make all the calls again."
echo "Results: \$OUT/gpu.log (everything), \$OUT/bench.txt and \$OUT/bench-cpu.txt (go test -bench output),"
echo "\$OUT/vidpipe-bench.txt (vidpipe bench's logs and reports), \$OUT/bench-cuda.json and \$OUT/bench-cuda-jpeg.json."
