#!/usr/bin/env bash
# The GPU benchmark of gadms (issue 8): is CUDA right, and how fast is the GA-DMS
# pre-training step against the card's limit and against PyTorch eager on the same card?
#
# Runs on any Linux machine with an NVIDIA GPU and python3 with torch 2.11 (CUDA), with no
# Rust toolchain: from the folder benches/package-gpu.sh makes (prebuilt gadms-run, plugins,
# parity test executables, golden set, this script), or from the repository after
# `make build` and `cargo test --release -p gadms --no-run`. In order:
#   1. `gadms-run doctor`: libtorch finds the GPU (stops here if not);
#   2. the golden parity tests (model_parity, step_parity) on CUDA in float32;
#   3. the card's bf16 matrix-multiply rate (8192³ products, torch), MFU's denominator;
#   4. benches/gpu-pretrain.toml: ViT-B/16 GA-DMS pre-training on synthetic-persons at
#      384×128, batch 128, bf16 autocast, 80 steps; the same step without the score; and
#      the GA-DMS step with gradient caching over two micro-batches of 64;
#   5. the PyTorch-eager baseline of the step (benches/pytorch_step.py, the authors' way),
#      and PyTorch running gadms's algorithm, same shapes, batch and precision, then a
#      torch.profiler table of the latter (profile-pytorch-gadms.txt);
#   6. the distributed path: benches/nccl-check.toml trained by one process and by a group of
#      one rank (NCCL for the tensors, Gloo for control), which must log the same losses;
#   7. a summary (benches/gpu_summary.py): samples/s, median step time, peak GPU memory,
#      TFLOP/s and MFU, the ratio to the baseline, the score's share, whether the step
#      waited for data, the stage table, and issue 15's goals (≥ 1.3× PyTorch running
#      gadms's algorithm, ≥ 3× the authors' code on an H200, MFU ≥ 25 %, score ≤ 10 %).
#
# Environment: GPU_SH_OUT (results: summary.md, summary.json, logs, metrics; default
# ./gpu-results), PYTHON (default python3), GPU_SH_DEVICE=cpu for a smoke test of the whole
# script on a CPU with the tiny model (checks the plumbing, not speed). Exits non-zero when a
# step failed; the summary still covers the steps that ran.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=${PYTHON:-python3}
device=${GPU_SH_DEVICE:-cuda}
out=$(mkdir -p "${GPU_SH_OUT:-gpu-results}" && cd "${GPU_SH_OUT:-gpu-results}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/gadms-gpu.XXXXXX")
log=$out/log.txt
: >"$log"
failed=()

say() { echo "== $*" | tee -a "$log"; }
fail() {
  echo "FAILED: $*" | tee -a "$log" >&2
  failed+=("$1")
}

# Where the prebuilt pieces are: a package, or a repository's target/release.
if [[ -x $here/bin/gadms-run ]]; then
  bin=$here/bin
  golden=${GADMS_GOLDEN_DIR:-$here/golden}
  test_exe() { echo "$here/tests/$1"; }
else
  repo=$(cd "$here/.." && pwd)
  bin=$repo/target/release
  golden=${GADMS_GOLDEN_DIR:-$repo/tests/golden/data}
  # The newest build of a test executable (cargo names them <test>-<hash>; the library's
  # unit tests gadms-<hash>).
  test_exe() {
    find "$repo/target/release/deps" -maxdepth 1 -type f -executable -name "${1%-lib}-*" -printf '%T@ %p\n' |
      sort -rn | head -1 | cut -d' ' -f2-
  }
fi
spec=$here/gpu-pretrain.toml
[[ -f $spec ]] || spec=$here/../benches/gpu-pretrain.toml

torch_lib=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') || {
  echo "FAILED: $py cannot import torch; set PYTHON to a python3 with torch 2.11" >&2
  exit 1
}
export LD_LIBRARY_PATH=$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export GADMS_PLUGIN_PATH=$bin
# A package carries the Gloo shim and libgloo with its libraries (the GPU machine has no
# libgloo), for step 6's group of one.
if [[ -f $here/lib/libgadms_gloo.so ]]; then
  export GADMS_GLOO_SHIM=$here/lib/libgadms_gloo.so
  export LD_LIBRARY_PATH=$here/lib:$LD_LIBRARY_PATH
fi

# The sizes: the benchmark itself, or a CPU smoke test of every step with the tiny model.
if [[ $device == cpu ]]; then
  run_set=(--set train.device=cpu --set model.preset=tiny --set data.train.height=96
    --set data.train.width=32 --set data.train.train_ids=8 --set data.train.images_per_id=2
    --set model.text_layers=8 --set train.batch_size=16
    --set train.workers=2 --set train.log_every=2)
  baseline=(tiny --device cpu --precision bf16 --batch 16 --steps 3 --warmup 1)
  matmul=512
else
  run_set=()
  baseline=(vit-b16 --device "$device" --precision bf16 --batch 128 --steps 20 --warmup 3)
  matmul=8192
fi

say "1/7 doctor"
"$bin/gadms-run" doctor 2>&1 | tee -a "$log" || fail doctor "gadms-run doctor did not run (see $log)"
if [[ $device != cpu ]] && ! grep -q "CUDA available: true" "$log"; then
  fail doctor "libtorch sees no CUDA device: check nvidia-smi, and that $py -c 'import torch; print(torch.cuda.is_available())' prints True"
  exit 1
fi
"$py" -c 'import torch; print("python torch", torch.__version__)' | tee -a "$log"

say "2/7 golden parity on $device (float32), and the GPU memory probe"
# The library's unit tests only for the probe: the others read the repository's files.
for t in model_parity step_parity "gadms-lib train::memory"; do
  read -r name filter <<<"$t"
  exe=$(test_exe "$name")
  if [[ -z $exe || ! -x $exe ]]; then
    fail parity "no $name test executable (package it with benches/package-gpu.sh)"
    continue
  fi
  GADMS_TEST_DEVICE=$device GADMS_GOLDEN_DIR=$golden "$exe" --test-threads 1 $filter >>"$out/parity.log" 2>&1 ||
    fail parity "$name on $device (see parity.log)"
done
tail -n 3 "$out/parity.log" | tee -a "$log"

say "3/7 bf16 matrix-multiply peak (${matmul}³)"
"$py" "$here/pytorch_step.py" --matmul-peak "$matmul" --device "$device" | tee "$work/peak.json" | tee -a "$log" ||
  fail peak "matrix-multiply timing"

say "4/7 gadms-run: $(basename "$spec")"
smi=
if [[ $device != cpu ]] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu,clocks.sm --format=csv,nounits -lms 250 >"$out/smi.csv" 2>/dev/null &
  smi=$!
fi
start=$(date +%s)
# The stage profile syncs the device at each stage of every step: the summary's stage table.
GADMS_PROFILE_STAGES=1 "$bin/gadms-run" run "$spec" --force --set experiment.output="$work/reports" "${run_set[@]}" 2>&1 |
  tee -a "$log" ||
  fail run "gadms-run run (see log.txt)"
echo "gadms-run took $(($(date +%s) - start)) s" | tee -a "$log"
[[ -n $smi ]] && kill "$smi" 2>/dev/null
runs=$work/reports/gpu-pretrain/runs
for v in "$runs"/*/; do
  cp "$v/seed-0/metrics.jsonl" "$out/metrics-$(basename "$v").jsonl" 2>/dev/null
done

say "5/7 PyTorch eager on the same card"
# After its timed steps, gadms's algorithm is profiled (torch.profiler, 3 steps): which
# attention kernel runs, and what the rest of the step spends its device time on.
for algorithm in reference gadms; do
  profile=()
  [[ $algorithm == gadms ]] && profile=(--profile "$out/profile-pytorch-gadms.txt")
  "$py" "$here/pytorch_step.py" "${baseline[@]}" --algorithm "$algorithm" --json "$work/pytorch-$algorithm.json" \
    "${profile[@]}" 2>&1 | tee -a "$log" || fail baseline "pytorch_step.py --algorithm $algorithm"
done

say "6/7 the distributed path: a group of one rank on $device against one process (float32)"
# On CUDA the group's tensors go through NCCL and its control traffic through Gloo; both
# must leave the run unchanged.
check=$here/nccl-check.toml
[[ -f $check ]] || check=$here/../benches/nccl-check.toml
"$bin/gadms-run" run "$check" --force --set experiment.output="$work/nccl/one" --set train.device="$device" \
  >>"$out/nccl.log" 2>&1 || fail nccl "the one-process run (see nccl.log)"
WORLD_SIZE=1 RANK=0 LOCAL_RANK=0 GADMS_STORE=$(mktemp -d "$work/store.XXXXXX") \
  "$bin/gadms-run" run "$check" --force --set experiment.output="$work/nccl/group" --set train.device="$device" \
  >>"$out/nccl.log" 2>&1 || fail nccl "the group of one (see nccl.log)"
"$py" - "$work/nccl" <<'PY' 2>&1 | tee -a "$log" "$out/nccl.log" || fail nccl "the group's losses differ (see nccl.log)"
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
def losses(kind):
    log = root / kind / "nccl-check/runs/ga-dms/seed-0/metrics.jsonl"
    return [r["loss"] for r in map(json.loads, log.read_text().splitlines()) if r["kind"] == "train"]
one, group = losses("one"), losses("group")
worst = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(one, group))
print(f"{len(one)} steps; largest relative loss difference, group of one vs one process: {worst:.2e}")
sys.exit(0 if len(one) == len(group) > 0 and worst < 1e-5 else 1)
PY

say "7/7 summary"
summary=(--runs "$runs" --peak "$work/peak.json" --out "$out"
  --pytorch "$work/pytorch-reference.json" "$work/pytorch-gadms.json")
((${#failed[@]})) && summary+=(--failed "${failed[@]}")
"$py" "$here/gpu_summary.py" "${summary[@]}" | tee -a "$log" || fail summary "gpu_summary.py"
if ((${#failed[@]})); then
  echo "gpu.sh: failed steps: ${failed[*]}; run folders kept in $work" >&2
  exit 1
fi
rm -rf "$work"
