#!/usr/bin/env bash
# Check and measure the CUDA backend on a machine with an NVIDIA GPU, from binaries built on
# another machine (README, "CUDA"): the engine's golden comparisons against transformers run on
# the GPU, then `hakaru bench` on synthetic models of real shapes (no download), priced from
# prices/gpus.toml.
#
#   scripts/cuda-check.sh HAKARU [GOLDEN_TEST] [OUT_DIR]
#
# HAKARU       a hakaru built with `--features cuda`
# GOLDEN_TEST  the engine's golden test binary of the same build, or `-` to skip it
#              (`cargo test --release --features cuda -p hakaru-engine --test golden --no-run`
#              prints its path)
# OUT_DIR      where the logs and the bench rows (JSON lines) go; default target/cuda-check
#
# Environment: NVML_TEST (hakaru-runner's lib test binary, `cargo test -p hakaru-runner --lib
# --no-run`: its ignored NVML test is run), HAKARU_GPU (a prices/gpus.toml name, e.g. h200), HAKARU_CEILING (the GPU's memory
# bandwidth in GB/s from its data sheet, so tg rows show their share of it), CHECK_BENCH (the
# `synthetic:` shapes and weights, `shape:weights` words, weights a dtype or a GGUF type; default
# below), CHECK_REPS (default 3), CHECK_TIMEOUT (seconds per step, default 300).
#
# Every step runs even when an earlier one fails (except when the binary's libraries are missing);
# the script exits non-zero if any failed.
set -uo pipefail
abs() { [ "$1" = - ] && echo - || realpath -m -- "$1"; }
hakaru=$(abs "${1:?give the path of a hakaru built with --features cuda}")
golden=$(abs "${2:--}")
out=$(abs "${3:-target/cuda-check}")
nvml_test=$([ -n "${NVML_TEST:-}" ] && abs "$NVML_TEST")
cd "$(dirname "$0")/.."
mkdir -p "$out"
: >"$out/steps.log"
failed=0
step() { # name, command…
  local name=${1//\//_}
  shift
  echo "== $name: $*" | tee -a "$out/steps.log"
  local t0=$SECONDS
  timeout "${CHECK_TIMEOUT:-300}" "$@" >"$out/$name.out" 2>"$out/$name.err"
  local rc=$?
  echo "   rc $rc in $((SECONDS - t0)) s" | tee -a "$out/steps.log"
  tail -n 5 "$out/$name.err" | sed 's/^/   /'
  [ $rc -eq 0 ] || failed=1
}

step gpu nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm \
  --format=csv
step ldd ldd "$hakaru"
if grep -q "not found" "$out/ldd.out"; then
  echo "   libraries missing (add the CUDA toolkit's lib64 to LD_LIBRARY_PATH):" >&2
  grep "not found" "$out/ldd.out" >&2
  exit 2
fi
step version "$hakaru" --version

if [ "$golden" != "-" ]; then
  # The golden tests find fixtures/ through the source path they were built in; run them from a
  # checkout at that path, or link it there.
  step golden env HAKARU_TEST_DEVICE=cuda "$golden" --test-threads 1 --nocapture
fi

if [ -n "$nvml_test" ]; then
  step nvml "$nvml_test" --ignored nvml --nocapture
fi

price=()
[ -n "${HAKARU_GPU:-}" ] && price=(--gpu "$HAKARU_GPU")
ceiling=()
[ -n "${HAKARU_CEILING:-}" ] && ceiling=(--ceiling "$HAKARU_CEILING")
reps=${CHECK_REPS:-3}
default="qwen2.5-0.5b:bf16 qwen2.5-0.5b:f16 qwen2.5-0.5b:f32 qwen2.5-0.5b:Q8_0 qwen2.5-0.5b:Q4_K_M"
default+=" qwen2.5-7b:bf16 qwen2.5-7b:Q4_K_M"
for pair in ${CHECK_BENCH:-$default}; do
  shape=${pair%%:*}
  weights=${pair#*:}
  case $weights in
    f32 | f16 | bf16) w=(--dtype "$weights") ;;
    *) w=(--quant "$weights") ;;
  esac
  step "bench-$shape-$weights" "$hakaru" bench --model "synthetic:$shape" --device cuda "${w[@]}" \
    -p 512 -n 128 -r "$reps" -o jsonl ${price[@]+"${price[@]}"} ${ceiling[@]+"${ceiling[@]}"}
done
# The throughput suite inside a run, as `hakaru run` writes it (run.json, then the report).
rm -rf "$out/runs"
step run "$hakaru" run --model synthetic:qwen2.5-0.5b --device cuda --dtype bf16 \
  --suite throughput --out "$out/runs"
run_json=$(find "$out/runs" -name run.json 2>/dev/null | head -n 1)
if [ -n "$run_json" ]; then
  step report "$hakaru" report "$(dirname "$run_json")"
else
  echo "== report: no run.json under $out/runs" | tee -a "$out/steps.log"
  failed=1
fi
exit $failed
