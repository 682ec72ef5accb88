#!/usr/bin/env bash
# gpu-check.sh runs vidpipe's CUDA proof on a GPU machine: it reassembles the
# ONNX Runtime GPU build and the model/bench test binary from the parts that
# scripts/gpu-pack.sh made (copied into one folder, default /tmp/gpu), puts
# the machine's CUDA 13 and cuDNN 9 libraries on the loader path, then runs
# TestDeviceMatchesCPU and BenchmarkDevice on cuda. Run it from the repo root:
#
#   bash scripts/gpu-check.sh [PARTS_DIR]                  the whole check
#   bash scripts/gpu-check.sh --probe [PARTS_DIR]          what the machine has, and which parts arrived
#   bash scripts/gpu-check.sh --assemble-only [PARTS_DIR]  reassemble and verify only (works without a GPU)
#
# Everything printed also goes to $OUT/gpu.log (bench output to $OUT/bench.txt);
# without $OUT, to $GPU_WORK/out. Nothing is fetched: the machine has no network.
# VIDPIPE_BENCH_DEVICE (default cuda), GPU_BENCH (benchmark pattern),
# GPU_BENCHTIME (default 50x) and GPU_COUNT (default 3) let a CPU rehearse it.
set -uo pipefail

mode=run
case "${1:-}" in
--probe | --assemble-only)
  mode=${1#--}
  shift
  ;;
esac
parts=${1:-/tmp/gpu}
[[ -d "$parts" ]] && parts=$(cd "$parts" && pwd)
work=${GPU_WORK:-/tmp/gpu-work}
out=${OUT:-$work/out}
device=${VIDPIPE_BENCH_DEVICE:-cuda}
mkdir -p "$work" "$out"

log() { printf '\n== gpu-check: %s (%s)\n' "$*" "$(date -u +%T)"; }
die() {
  printf 'gpu-check: %s\n' "$*"
  exit 1
}

# The loader must find these for libonnxruntime_providers_cuda.so (NEEDED)
# and for the cuDNN 9 it dlopens.
needed_libs=(libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcudnn.so.9 libcuda.so.1)

# cuda_dirs prints the folders holding CUDA libraries: every lib folder of the
# pip nvidia-* packages of the machine's python (torch's CUDA 13 runtime,
# cuBLAS, cuRAND, cuDNN 9...), then the toolkit's and the driver's.
cuda_dirs() {
  local py roots=()
  for py in python3 /opt/torch/.venv/bin/python3; do
    command -v "$py" >/dev/null 2>&1 || continue
    mapfile -t -O "${#roots[@]}" roots < <("$py" -c 'import nvidia; print("\n".join(nvidia.__path__))' 2>/dev/null)
  done
  {
    for r in "${roots[@]}"; do
      [[ -d "$r" ]] && find "$r" -name 'lib*.so*' -printf '%h\n' 2>/dev/null
    done
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
      [[ -d "$d" ]] && echo "$d"
    done
  } | awk '!seen[$0]++'
}

# find_lib prints where the loader would find library $1, given the folders in
# LD_LIBRARY_PATH, falling back to ldconfig's cache.
find_lib() {
  local d
  local -a ldirs
  IFS=: read -ra ldirs <<<"${LD_LIBRARY_PATH:-}"
  for d in "${ldirs[@]}"; do
    [[ -n "$d" && -e "$d/$1" ]] && {
      echo "$d/$1"
      return 0
    }
  done
  ldconfig -p 2>/dev/null | awk -v l="$1" '$1 == l {print $NF; found=1; exit} END {exit !found}'
}

setup_loader() {
  local dirs d l p missing=()
  LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}
  mapfile -t dirs < <(cuda_dirs)
  for d in "${dirs[@]}"; do
    LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
  done
  export LD_LIBRARY_PATH
  for l in "${needed_libs[@]}"; do
    if p=$(find_lib "$l"); then
      printf '  %-20s %s\n' "$l" "$p"
    else
      missing+=("$l")
    fi
  done
  ((${#missing[@]})) || return 0
  # Last resort: one search of the disk for them all; each takes the folder
  # of its first hit.
  local names=() hits
  for l in "${missing[@]}"; do names+=(-o -name "$l*"); done
  hits=$(find / -xdev \( -path /proc -o -path /sys \) -prune -o \( "${names[@]:1}" \) -print 2>/dev/null)
  for l in "${missing[@]}"; do
    p=$(grep -m1 "/$l" <<<"$hits")
    if [[ -n "$p" ]]; then
      printf '  %-20s %s (found by search)\n' "$l" "$p"
      LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$(dirname "$p")"
    else
      printf '  %-20s NOT FOUND\n' "$l"
    fi
  done
  export LD_LIBRARY_PATH
}

probe() {
  log "machine"
  uname -srm
  ldd --version 2>&1 | head -n1
  nvidia-smi -L || echo "nvidia-smi failed"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null
  nproc
  command -v xz zstd python3 tar 2>&1
  df -h /tmp | tail -n1
  log "CUDA libraries"
  setup_loader
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  log "parts in $parts"
  ls -l "$parts" 2>&1
}

# unxz decompresses stdin to stdout: xz if the machine has it, else python's lzma.
unxz() {
  if command -v xz >/dev/null 2>&1; then
    xz -dc
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.stdin.buffer), sys.stdout.buffer, 1 << 20)'
  fi
}

assemble() {
  log "reassembling from $parts into $work"
  [[ -f "$parts/PARTS.sha256" ]] || die "$parts/PARTS.sha256 missing: copy the last part (it holds the manifests) into $parts"
  local missing
  missing=$(awk '{print $2}' "$parts/PARTS.sha256" | while read -r f; do [[ -f "$parts/$f" ]] || echo "$f"; done)
  if [[ -n "$missing" ]]; then
    die "parts missing from $parts: $(echo $missing). A fresh machine has lost the earlier calls' copies: make every call of the sequence gpu-pack.sh printed again."
  fi
  (cd "$parts" && sha256sum --strict --quiet -c PARTS.sha256) || die "a part in $parts is corrupt (sha256): copy it again"
  rm -rf "$work/ort" && mkdir -p "$work/ort"
  cat "$parts"/ort.tar.xz.part* | unxz | tar -x -C "$work/ort" || die "unpack ONNX Runtime failed"
  unxz <"$parts/bench.test.xz" >"$work/bench.test" || die "unpack bench.test failed"
  chmod +x "$work/bench.test"
  (cd "$work" && sha256sum --strict -c "$parts/FILES.sha256") || die "reassembled files do not match their sha256"
  ls -l "$work/ort" "$work/bench.test"
}

# run_step NAME SECONDS FILE COMMAND...: runs one step under a time limit,
# its output also appended to FILE (/dev/null for none), and records its
# status, so that a failing test still lets the benchmark run.
declare -A status
run_step() {
  local name=$1 secs=$2 file=$3
  shift 3
  log "$name"
  echo "+ $*"
  timeout --kill-after=10 "$secs" "$@" 2>&1 | tee -a "$file"
  local rc=${PIPESTATUS[0]}
  status[$name]=$rc
  echo "-- $name: exit $rc"
}

# summary prints the median of each benchmark's frames/s and ms/batch over
# the -count repetitions, and run minus transfer: the model alone.
summary() {
  awk '
    /^BenchmarkDevice\// {
      name = $1; sub(/-[0-9]+$/, "", name)
      for (i = 3; i < NF; i++) {
        if ($(i+1) == "frames/s") fps[name] = fps[name] " " $i
        if ($(i+1) == "ms/batch") ms[name] = ms[name] " " $i
      }
    }
    function median(s,   a, n, i, j, t) {
      n = split(s, a, " ")
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
      for (name in ms) {
        printf "%-40s %10.2f ms/batch %10.1f frames/s\n", name, median(ms[name]), median(fps[name])
        if (name ~ /\/run$/) {
          t = name; sub(/\/run$/, "/transfer", t)
          if (t in ms) {
            b = name; sub(/^BenchmarkDevice\/batch=/, "", b); sub(/\/run$/, "", b)
            model = median(ms[name]) - median(ms[t])
            if (model > 0) printf "%-40s %10.2f ms/batch %10.1f frames/s (run - transfer)\n", "model alone, batch=" b, model, 1000 * b / model
          }
        }
      }
    }' "$@" | sort
}

main() {
  echo "gpu-check $mode: parts $parts, work $work, out $out"
  case $mode in
  probe)
    probe
    return 0
    ;;
  assemble-only)
    assemble
    return 0
    ;;
  esac
  probe
  assemble
  export VIDPIPE_ORT_LIB=$work/ort/libonnxruntime.so.1
  log "providers_cuda dependencies"
  ldd "$work/ort/libonnxruntime_providers_cuda.so" | grep -E 'cu|not found'
  cd "$work" || die "cd $work"

  : >"$out/bench.txt"
  : >"$out/bench-cpu.txt"
  run_step "test on $device" 240 /dev/null env VIDPIPE_BENCH_DEVICE="$device" ./bench.test \
    -test.run '^TestDeviceMatchesCPU$' -test.v -test.timeout 230s
  run_step "benchmark on $device" 300 "$out/bench.txt" env VIDPIPE_BENCH_DEVICE="$device" ./bench.test \
    -test.run '^$' -test.bench "${GPU_BENCH:-^BenchmarkDevice\$}" -test.benchtime "${GPU_BENCHTIME:-50x}" -test.count "${GPU_COUNT:-3}" \
    -test.timeout 290s
  # For contrast: the same Run on this machine's CPU cores, batch 1 only.
  run_step "benchmark on cpu, batch 1" 90 "$out/bench-cpu.txt" env VIDPIPE_BENCH_DEVICE=cpu ./bench.test \
    -test.run '^$' -test.bench '^BenchmarkDevice$/^batch=1$/^run$' -test.benchtime 10x -test.timeout 80s

  log "summary (median over runs)"
  nvidia-smi -L 2>/dev/null
  echo "on $device:"
  summary "$out/bench.txt"
  echo "on cpu ($(nproc) cores):"
  summary "$out/bench-cpu.txt"
  local rc=0 s
  for s in "${!status[@]}"; do
    echo "$s: $([[ ${status[$s]} == 0 ]] && echo PASS || echo "FAIL (exit ${status[$s]})")"
    [[ ${status[$s]} == 0 ]] || rc=1
  done
  return $rc
}

main 2>&1 | tee -a "$out/gpu.log"
exit "${PIPESTATUS[0]}"
