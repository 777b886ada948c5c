#!/usr/bin/env bash
# The commands that produced results/fashion-mnist.jsonl: every Fashion-MNIST zoo model under the
# `pgd` preset (eps 0.1, 1,000 test images), then under `reliable`. Each row also records its
# protocol, seed, versions, checkpoint hash and git commit. Rerunning reuses stored rows.
#   bash results/evaluate_zoo.sh [pgd|reliable ...]
set -euo pipefail
cd "$(dirname "$0")/.."
protocols=("${@:-pgd reliable}")
models=$(python -m robustbench_snn models list --dataset fashion-mnist --json \
         | python -c 'import json, sys; print(" ".join(card["name"] for card in json.load(sys.stdin)))')
for protocol in ${protocols[@]}; do
  for model in $models; do
    python -m robustbench_snn evaluate --model "$model" --attack "$protocol" --seed 0 --compile -q
  done
done
