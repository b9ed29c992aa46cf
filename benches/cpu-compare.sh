#!/usr/bin/env bash
# Times the GA-DMS pre-training step of gadms (runner/benches/train_step.rs) and of the
# PyTorch-eager baseline (benches/pytorch_step.py) back to back on this machine and prints
# the speed-up per configuration.
# Usage: benches/cpu-compare.sh [golden] [tiny] [vit-b16]   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
wanted=" ${*:-golden tiny vit-b16} "
configs=()
for c in golden tiny vit-b16; do [[ "$wanted" == *" $c "* ]] && configs+=("$c"); done
make --silent build
ours=$(GADMS_BENCH_ONLY="$(IFS=,; echo "${configs[*]}")" cargo bench -q -p gadms --bench train_step 2>/dev/null | tail -n +3)
theirs=$(.venv/bin/python benches/pytorch_step.py "${configs[@]}" | tail -n +3)
echo "$ours" | sed 's/^/gadms:   /'
echo "$theirs" | sed 's/^/PyTorch: /'
printf '%-10s %6s %15s %17s %9s\n' config batch "gadms step (s)" "PyTorch step (s)" speed-up
paste <(echo "$ours" | awk '{print $(NF-5)}') <(echo "$theirs") | while read -r o name batch t _; do
  printf '%-10s %6s %15s %17s %8.2fx\n' "$name" "$batch" "$o" "$t" "$(echo "$t / $o" | bc -l)"
done
