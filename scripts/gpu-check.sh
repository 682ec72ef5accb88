#!/usr/bin/env bash
# gpu-check.sh runs vidpipe's CUDA proof on a GPU machine: it reassembles the
# ONNX Runtime GPU build, the model/bench test binary, vidpipe-gpu (vidpipe
# linked against a static FFmpeg, with that build's ffmpeg and ffprobe) and
# the bench clip from the parts that scripts/gpu-pack.sh made (copied into
# one folder, default /tmp/gpu), puts the machine's CUDA 13 and cuDNN 9
# libraries on the loader path, then runs TestDeviceMatchesCPU and
# BenchmarkDevice on cuda, and `vidpipe bench --device cuda` (decode,
# embedded NATS, workers on the GPU, coordinator, in one process) twice: raw
# frames with the precision matrix, JPEG frames without. Run it from the
# repo root:
#
#   bash scripts/gpu-check.sh [PARTS_DIR]                  the whole check
#   bash scripts/gpu-check.sh --probe [PARTS_DIR]          what the machine has (its glibc against what
#                                                          the binaries need), which parts arrived
#   bash scripts/gpu-check.sh --assemble-only [PARTS_DIR]  reassemble and verify only (works without a GPU)
#
# Everything printed also goes to $OUT/gpu.log; go test -bench output to
# $OUT/bench.txt and $OUT/bench-cpu.txt, vidpipe bench's logs and reports to
# $OUT/vidpipe-bench.txt and its JSON to $OUT/bench-cuda.json and
# $OUT/bench-cuda-jpeg.json; without $OUT, to $GPU_WORK/out. Nothing is
# fetched: the machine has no network.
#
# The steps stop GPU_CHECK_BUDGET seconds (default 450) after the start, less
# 20 for the summary, so that the summary is printed within the last device
# call's 480 s; each step also has its own limit, the go tests leave the
# vidpipe bench steps 240 s whatever they take, and a step left under 15 s
# is reported as skipped.
#
# VIDPIPE_BENCH_DEVICE (default cuda), GPU_BENCH (benchmark pattern),
# GPU_BENCHTIME (default 50x) and GPU_COUNT (default 3) let a CPU rehearse
# it: with VIDPIPE_BENCH_DEVICE=cpu, vidpipe bench runs at --imgsz 320
# --batch 4 --workers 1 --rounds 1 without --half, and the steps' own limits
# give way to GPU_CHECK_BUDGET alone (set it large there).
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
budget=${GPU_CHECK_BUDGET:-450}
deadline=$((SECONDS + budget - 20)) # the last 20 s are the summary's
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
  log "glibc: what the packed binaries need"
  glibc_check
  log "parts in $parts"
  ls -l "$parts" 2>&1
}

# glibc_check compares the machine's glibc with the newest GLIBC_ symbol
# version each packed binary needs (glibc.txt, written by gpu-pack.sh).
glibc_check() {
  local have b v need verdict
  have=$(ldd --version 2>&1 | head -n1 | grep -o '[0-9][0-9]*\.[0-9][0-9]*$')
  if [[ ! -f "$parts/glibc.txt" ]]; then
    echo "  glibc.txt is not in $parts (it travels in the first part)"
    return 0
  fi
  while read -r b v; do
    need=${v#GLIBC_}
    if [[ -z "$have" ]]; then
      verdict="unknown: ldd --version names no glibc version"
    elif [[ $(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1) == "$need" ]]; then
      verdict=ok
    else
      verdict="TOO OLD: $b will not start"
    fi
    printf '  %-12s needs %-11s the machine has glibc %s: %s\n' "$b" "$v" "${have:-?}" "$verdict"
  done <"$parts/glibc.txt"
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
    die "parts missing from $parts: ${missing//$'\n'/ }. A fresh machine has lost the earlier calls' copies: make every call of the sequence gpu-pack.sh printed again."
  fi
  (cd "$parts" && sha256sum --strict --quiet -c PARTS.sha256) || die "a part in $parts is corrupt (sha256): copy it again"
  rm -rf "$work/ort" && mkdir -p "$work/ort"
  cat "$parts"/ort.tar.xz.part* | unxz | tar -x -C "$work/ort" || die "unpack ONNX Runtime failed"
  unxz <"$parts/bench.test.xz" >"$work/bench.test" || die "unpack bench.test failed"
  unxz <"$parts/vidpipe-gpu.xz" >"$work/vidpipe-gpu" || die "unpack vidpipe-gpu failed"
  chmod +x "$work/bench.test" "$work/vidpipe-gpu"
  rm -rf "${work:?}/bin" && mkdir -p "$work/bin"
  unxz <"$parts/ffmpeg.tar.xz" | tar -x -C "$work/bin" || die "unpack ffmpeg and ffprobe failed"
  cp "$parts/vtest4.mp4" "$work/" || die "copy the clip failed"
  (cd "$work" && sha256sum --strict -c "$parts/FILES.sha256") || die "reassembled files do not match their sha256"
  ls -l "$work/ort" "$work/bench.test" "$work/vidpipe-gpu" "$work/bin" "$work/vtest4.mp4"
}

# run_step NAME SECONDS FILE COMMAND...: runs one step under a time limit,
# its output also appended to FILE (/dev/null for none), and records its
# status, so that a failing test still lets the benchmark run. The limit is
# cut to what is left before the deadline less $keep, the seconds promised
# to the steps after it (on the CPU it is only that); a step left under
# 15 s is skipped.
declare -A status
order=()
keep=0
run_step() {
  local name=$1 secs=$2 file=$3 left
  shift 3
  order+=("$name")
  left=$((deadline - SECONDS - keep))
  [[ $device == cpu ]] && secs=$left
  ((secs <= left)) || secs=$left
  log "$name"
  echo "+ $*"
  if ((secs < 15)); then
    status[$name]=skipped
    echo "-- $name: skipped, $left s left of GPU_CHECK_BUDGET=$budget (less $keep s kept for later steps)"
    return 0
  fi
  echo "(limit $secs s)"
  timeout --kill-after=10 "$secs" "$@" 2>&1 | tee -a "$file"
  local rc=${PIPESTATUS[0]}
  status[$name]=$rc
  echo "-- $name: exit $rc"
}

# vidpipe_bench JSON ARGS...: vidpipe-gpu bench ARGS --json, its report
# into JSON and, after its logs, on stdout. Exported for run_step's bash -c
# (timeout runs commands, not functions).
# shellcheck disable=SC2317
vidpipe_bench() {
  local json=$1 rc
  shift
  ./vidpipe-gpu bench "$@" --json >"$json"
  rc=$?
  cat "$json"
  return "$rc"
}
export -f vidpipe_bench

# bench_summary JSON...: the key figures of vidpipe bench reports.
bench_summary() {
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$@" <<'PY'
import json, os, sys

for path in sys.argv[1:]:
    name = os.path.basename(path)
    try:
        with open(path) as f:
            r = json.load(f)
    except (OSError, ValueError) as e:
        print(f"{name}: no report, the step failed or was skipped: see vidpipe-bench.txt ({e})")
        continue
    print(f"{name}: {r['device']}, {r['precision']}, {r['input_form']} input, {r['codec']} frames, "
          f"imgsz {r['input']}, batch {r['batch']}, workers {r['workers']}, {r['frames']} frames, {r['cpus']} cpus")
    print(f"  pipeline {r['pipeline_fps']:.1f} frames/s, model alone {r['model_fps']:.1f} frames/s, "
          f"pipeline/model {r['pipeline_over_model']:.3f} (rounds {r['ratio_min']:.3f}..{r['ratio_max']:.3f})")
    print(f"  decode+letterbox {r['decode_fps']:.1f} frames/s, ffmpeg CLI {r['ffmpeg_cli_fps']:.1f} frames/s "
          f"(ratio {r['decode_over_ffmpeg']:.3f}); ingest cores at 3000 frames/s {r['ingest_cores_at_3000']:.2f}")
    b = r.get("breakdown") or {}
    if b:
        print(f"  per frame: pipeline {b['pipeline_ms']:.3f} ms, model alone {b['model_alone_ms']:.3f} ms; per session "
              f"frame: read {b.get('read_ms', 0):.3f} ms, infer {b['infer_ms']:.3f} ms, post {b['post_ms']:.3f} ms, idle {b['idle_ms']:.3f} ms; "
              f"batch mean {b['batch_mean']:.1f}")
    f = r.get("reference")
    if f:
        print(f"  against fp32 on the CPU (conf {f['conf']}, {f['frames']} frames): {f['matched']} of {f['cpu_detections']} "
              f"matched (same class, IoU > 0.9), {f['only_cpu']} only on the CPU, {f['only_bench']} only here; "
              f"max box diff {f['max_box_diff_px']} px, conf {f['max_conf_diff']}; pinned buffers {r.get('pinned')}")
    g = r.get("gpu")
    if g:
        print(f"  GPU {g['name']}: utilisation mean {g['mean_percent']:.0f}%, max {g['max_percent']:.0f}% "
              f"({g['samples']} samples), memory max {g['max_memory_mib']:.0f} MiB")
    else:
        print("  GPU utilisation: not sampled (no GPU or no nvidia-smi)")
    rows = r.get("matrix") or []
    print(f"  matrix: {len(rows)} rows")
    for m in rows:
        line = f"    {m['precision']:<5} {m['input']:<5} batch {m['batch']:>3}: {m['fps']:10.1f} frames/s {m['ms_per_batch']:9.2f} ms/batch"
        print(line + (f"  error: {m['error']}" if m.get("error") else ""))
PY
  elif command -v jq >/dev/null 2>&1; then
    local j
    for j in "$@"; do
      echo "$(basename "$j"):"
      jq -r '"  pipeline \(.pipeline_fps) frames/s, model alone \(.model_fps) frames/s, ratio \(.pipeline_over_model), matrix rows \(.matrix // [] | length), GPU mean \(.gpu.mean_percent // "n/a")%"' "$j" 2>&1
    done
  else
    echo "neither python3 nor jq here: see $*"
  fi
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
  # go test's own timeouts (a goroutine dump rather than a kill) sit just
  # under the steps' limits; a CPU rehearsal has only the budget.
  local t_test=115s t_bench=145s
  [[ $device == cpu ]] && t_test=0 t_bench=0
  # The vidpipe bench steps below are promised 240 s, whatever the go
  # tests take.
  keep=240
  run_step "test on $device" 120 /dev/null env VIDPIPE_BENCH_DEVICE="$device" ./bench.test \
    -test.run '^TestDeviceMatchesCPU$' -test.v -test.timeout "$t_test"
  run_step "benchmark on $device" 150 "$out/bench.txt" env VIDPIPE_BENCH_DEVICE="$device" ./bench.test \
    -test.run '^$' -test.bench "${GPU_BENCH:-^BenchmarkDevice\$}" -test.benchtime "${GPU_BENCHTIME:-50x}" -test.count "${GPU_COUNT:-3}" \
    -test.timeout "$t_bench"
  # For contrast: the same Run on this machine's CPU cores, batch 1 only.
  run_step "benchmark on cpu, batch 1" 60 "$out/bench-cpu.txt" env VIDPIPE_BENCH_DEVICE=cpu ./bench.test \
    -test.run '^$' -test.bench '^BenchmarkDevice$/^batch=1$/^run$' -test.benchtime 10x -test.timeout 55s

  # The whole pipeline in one process, with this build's ffmpeg and ffprobe
  # on the PATH (the bench compares its decode with the ffmpeg CLI's).
  export PATH=$work/bin:$PATH
  local vb=(--device "$device" --imgsz 640 --batch 32 --workers 2 --half --rounds 3)
  [[ $device == cpu ]] && vb=(--device cpu --imgsz 320 --batch 4 --workers 1 --rounds 1)
  : >"$out/vidpipe-bench.txt"
  rm -f "$out/bench-$device.json" "$out/bench-$device-jpeg.json"
  keep=60
  run_step "vidpipe bench on $device" 200 "$out/vidpipe-bench.txt" bash -c 'vidpipe_bench "$@"' _ \
    "$out/bench-$device.json" "${vb[@]}" --compare-frames 10 vtest4.mp4
  keep=0
  run_step "vidpipe bench on $device, jpeg frames" 100 "$out/vidpipe-bench.txt" bash -c 'vidpipe_bench "$@"' _ \
    "$out/bench-$device-jpeg.json" "${vb[@]}" --compare-frames 10 --frame-codec jpeg --matrix none vtest4.mp4

  log "summary (median over runs)"
  nvidia-smi -L 2>/dev/null
  echo "on $device:"
  summary "$out/bench.txt"
  echo "on cpu ($(nproc) cores):"
  summary "$out/bench-cpu.txt"
  echo "vidpipe bench:"
  bench_summary "$out/bench-$device.json" "$out/bench-$device-jpeg.json"
  local rc=0 s
  for s in "${order[@]}"; do
    case ${status[$s]} in
    0) echo "$s: PASS" ;;
    skipped) echo "$s: SKIPPED (no time left)" ;;
    *) echo "$s: FAIL (exit ${status[$s]})" ;;
    esac
    [[ ${status[$s]} == 0 ]] || rc=1
  done
  echo "gpu-check took $SECONDS s"
  return $rc
}

main 2>&1 | tee -a "$out/gpu.log"
exit "${PIPESTATUS[0]}"
