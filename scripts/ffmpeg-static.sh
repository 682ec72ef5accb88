#!/usr/bin/env bash
# ffmpeg-static.sh builds a minimal static FFmpeg 5.1.9 (Debian 12's version,
# from Debian's source tarball) and links vidpipe against it, so that the
# binary needs nothing but glibc: the GPU machine has no FFmpeg libraries,
# and Debian's FFmpeg pulls in 213 shared libraries (235 MiB), more than a
# device call carries.
#
# Only what vidpipe's decode and bench paths read from a video file is
# enabled: no network, no external libraries except zlib (PNG and
# compressed MP4/MKV headers need it; linked from its static libz.a), no
# hardware acceleration, no audio decoders, no filters or devices beyond
# what the ffmpeg CLI needs to scale video. libswscale, libswresample,
# libavfilter and libavdevice are built because go-astiav links them all.
# There is no libx264, so `vidpipe run` needs --no-annotate with this build.
# Of the programs, ffmpeg and ffprobe are built, statically too: `vidpipe
# bench` runs both (its decode ÷ `ffmpeg -vf scale -f null` comparison, and
# ffprobe for the picture size), and the GPU machine has neither.
#
# Everything lives in ${VIDPIPE_CACHE:-~/.cache/vidpipe}/ffmpeg-5.1.9-static:
# the tarball (sha256 pinned), src/ (only during a build), prefix/ (the
# installed libraries, headers and bin/ffmpeg, bin/ffprobe; prefix/.built
# holds the configure line they were built with) and pkg-config-static, the
# wrapper through which cmd/go links the static archives. A rerun with the
# same configuration skips the FFmpeg build (minutes, under `nice -n 19
# make -j2`). x86 assembly is used when nasm is installed (apt-get install
# nasm), else FFmpeg's C code decodes, several times slower.
#
#   scripts/ffmpeg-static.sh                 FFmpeg, then vidpipe into $cache/vidpipe-gpu
#   scripts/ffmpeg-static.sh -o PATH         the same, vidpipe into PATH
#   scripts/ffmpeg-static.sh --ffmpeg-only   FFmpeg only
#
# The three binaries are checked with ldd: anything beyond glibc's own
# libraries (libc, libm, libpthread, libdl, libresolv, ld-linux) fails, and
# so does a symbol newer than glibc 2.34 (RHEL 9's; FFmpeg's one 2.35
# symbol, hypot, is bound to its older version at compile time).
# Progress goes to stderr; stdout gets one line, the prefix, whose bin/
# holds ffmpeg and ffprobe.
set -euo pipefail

version=5.1.9
tarball=ffmpeg_$version.orig.tar.xz
url=http://deb.debian.org/debian/pool/main/f/ffmpeg/$tarball
sha256=d9b593bb2ba93d4b50f74177e0cdcd41747e708596367deed0c30348a71dd176

root=$(git rev-parse --show-toplevel)
base=${VIDPIPE_CACHE:-$HOME/.cache/vidpipe}
dir=$base/ffmpeg-$version-static
prefix=$dir/prefix
out=$base/vidpipe-gpu
build_vidpipe=1
while (($#)); do
  case $1 in
  -o)
    out=$2
    shift 2
    ;;
  --ffmpeg-only)
    build_vidpipe=0
    shift
    ;;
  *)
    echo "usage: $0 [-o PATH] [--ffmpeg-only]" >&2
    exit 2
    ;;
  esac
done

log() { printf 'ffmpeg-static: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}

# The components, by FFmpeg's configure names. The native av1 decoder only
# drives hardware decoders, none of which is built: it is here so that an
# AV1 file fails with FFmpeg's own explanation rather than "no decoder".
decoders=(h264 hevc mpeg4 msmpeg4v1 msmpeg4v2 msmpeg4v3 mpeg1video mpeg2video mjpeg vp8 vp9 av1 png rawvideo)
encoders=(mjpeg png)
# Those of media/formats' allow-list that matter for video files; image2
# and rawvideo for completeness (the decoder's whitelist refuses image2).
demuxers=(mov avi matroska mpegts mpegps mpegvideo ivf mjpeg image2 image_jpeg_pipe rawvideo yuv4mpegpipe h264 hevc m4v)
parsers=(h264 hevc mpeg4video mpegvideo mjpeg vp8 vp9 png av1)
protocols=(file pipe)
bsfs=(h264_mp4toannexb hevc_mp4toannexb vp9_superframe_split extract_extradata null)
# The ffmpeg CLI selects its own few filters (format, null, trim...).
filters=(buffer buffersink null format scale)
muxers=(null)                # ffmpeg -f null
encoders+=(wrapped_avframe) # the null muxer's video codec

join() { # join LIST...: comma-separated
  local IFS=,
  echo "$*"
}
config=(
  --prefix="$prefix"
  --disable-shared --enable-static --enable-pic
  --disable-programs --enable-ffmpeg --enable-ffprobe
  --disable-doc --disable-network --disable-debug
  --disable-autodetect --disable-everything
  --enable-zlib --extra-ldflags="-L$prefix/lib"
  --extra-cflags="-include $dir/glibc-compat.h"
  --enable-avdevice --enable-avfilter --enable-swscale --enable-swresample
  --pkg-config-flags=--static
  --enable-decoder="$(join "${decoders[@]}")"
  --enable-encoder="$(join "${encoders[@]}")"
  --enable-demuxer="$(join "${demuxers[@]}")"
  --enable-parser="$(join "${parsers[@]}")"
  --enable-protocol="$(join "${protocols[@]}")"
  --enable-bsf="$(join "${bsfs[@]}")"
  --enable-filter="$(join "${filters[@]}")"
  --enable-muxer="$(join "${muxers[@]}")"
)
if ! command -v nasm >/dev/null 2>&1; then
  log "nasm not found: building without x86 assembly (decoding will be several times slower; apt-get install nasm)"
  config+=(--disable-x86asm)
fi

# zlib's static archive, found where gcc finds libraries: copied into
# prefix/lib before the build, which every link (ffmpeg's programs here,
# vidpipe's through the .pc files' -L) searches before the system folders,
# so that -lz takes it rather than libz.so.
libz=$(gcc -print-file-name=libz.a)
[[ "$libz" == /* && -f "$libz" ]] || die "libz.a not found: apt-get install zlib1g-dev"

mkdir -p "$dir"
cd "$dir"

# Debian 12 has glibc 2.36; what the binaries need is its symbols' versions,
# 2.34 at most but for hypot, whose 2.35 version only changed error
# handling: every FFmpeg file takes the old one (x86-64's first, 2.2.5).
glibc_max=2.34
cat >glibc-compat.h <<'EOF'
/* Written by scripts/ffmpeg-static.sh: bind hypot to glibc's old version, so
   that FFmpeg needs no symbol newer than glibc 2.34. */
__asm__(".symver hypot,hypot@GLIBC_2.2.5");
EOF

if [[ -f prefix/.built && "$(cat prefix/.built)" == "${config[*]}" ]]; then
  log "FFmpeg $version already built in $prefix"
else
  if [[ ! -f "$tarball" ]] || ! sha256sum --quiet -c <<<"$sha256  $tarball" 2>/dev/null; then
    log "fetching $url"
    curl -fsSL --retry 3 -o "$tarball.tmp" "$url"
    mv "$tarball.tmp" "$tarball"
  fi
  sha256sum --quiet -c <<<"$sha256  $tarball" || die "$tarball: sha256 is not $sha256"

  rm -rf src prefix
  mkdir -p src prefix/lib
  cp "$libz" prefix/lib/libz.a
  tar -xJf "$tarball" -C src --strip-components=1
  start=$SECONDS
  log "configuring"
  (cd src && nice -n 19 ./configure "${config[@]}" >../configure.log 2>&1) ||
    die "configure failed: $(tail -n5 configure.log)"
  log "building (nice -n 19 make -j2)"
  (cd src && nice -n 19 make -j2 >../make.log 2>&1 && make install >>../make.log 2>&1) ||
    die "make failed: $(tail -n5 make.log)"
  log "built in $((SECONDS - start)) s: $(du -sh prefix/lib | cut -f1) of static libraries"
  # The source tree's objects are only needed by a rebuild, which starts
  # over anyway.
  rm -rf src
  echo "${config[*]}" >prefix/.built
fi

# cmd/go runs $PKG_CONFIG for go-astiav's #cgo pkg-config lines: --static
# adds each library's private dependencies (-lz -lm -pthread...), and
# PKG_CONFIG_LIBDIR keeps the system's shared FFmpeg out of the search.
cat >pkg-config-static.tmp <<EOF
#!/bin/sh
# Written by scripts/ffmpeg-static.sh: FFmpeg from $prefix, static.
PKG_CONFIG_LIBDIR=$prefix/lib/pkgconfig exec pkg-config --static "\$@"
EOF
chmod +x pkg-config-static.tmp
mv pkg-config-static.tmp pkg-config-static

# glibc_only BINARY fails unless BINARY needs nothing but glibc's own
# libraries (the GPU machine has nothing else that can be relied on), none
# newer than glibc_max.
glibc_only() {
  local extra need
  extra=$(ldd "$1" | awk '{print $1}' |
    grep -Ev '^(linux-vdso\.so|libc\.so|libm\.so|libpthread\.so|libdl\.so|libresolv\.so|/lib64/ld-linux-x86-64\.so|/lib/ld-linux)' || true)
  [[ -z "$extra" ]] || die "$1 needs more than glibc: ${extra//$'\n'/ }"
  need=$(objdump -T "$1" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n1)
  [[ $(printf '%s\n' "${need#GLIBC_}" "$glibc_max" | sort -V | tail -n1) == "$glibc_max" ]] ||
    die "$1 needs $need, newer than glibc $glibc_max: $(objdump -T "$1" | grep -F "($need)" | awk '{print $NF}' | tr '\n' ' ')"
  log "$1: $(du -h "$1" | cut -f1), glibc only, symbols up to $need"
}
glibc_only prefix/bin/ffmpeg
glibc_only prefix/bin/ffprobe

if ((!build_vidpipe)); then
  echo "$prefix"
  exit 0
fi

log "building vidpipe into $out"
cd "$root"
mkdir -p "$(dirname "$out")"
PKG_CONFIG=$dir/pkg-config-static PKG_CONFIG_PATH=$prefix/lib/pkgconfig CGO_ENABLED=1 \
  go build -trimpath -ldflags='-s -w' -o "$out" ./cmd/vidpipe
glibc_only "$out"
echo "$prefix"
