#!/usr/bin/env bash
# The commands that produced the attack rows of results/fashion-mnist.jsonl: every Fashion-MNIST zoo
# model under the `pgd` preset (eps 0.1, 1,000 test images), under `reliable`, and (`sweep`) under
# `pgd` at the eps sweep of DESIGN.md that QTE integrates; `audit` stores each model's audit of
# `reliable` (every attack family alone, 200 images) in results/audits/. Each row also records its
# protocol, seed, versions, weights hash, code version and git commit. They write to the official
# store on purpose (--results-dir results). Rerunning reuses stored rows.
#   bash results/evaluate_zoo.sh [pgd|reliable|sweep|audit ...]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=("${@:-pgd reliable sweep}")
models=$(python -m robustbench_snn models list --dataset fashion-mnist --json \
         | python -c 'import json, sys; print(" ".join(card["name"] for card in json.load(sys.stdin)))')
for job in ${jobs[@]}; do
  for model in $models; do
    if [ "$job" = audit ]; then
      python -m robustbench_snn audit "$model" -n 200 --seed 0 -q --results-dir results
    elif [ "$job" = sweep ]; then
      for eps in 1/255 2/255 4/255 8/255 0.05 0.1 0.15 0.2; do
        python -m robustbench_snn evaluate --model "$model" --attack pgd --eps "$eps" --seed 0 --compile -q --results-dir results
      done
    else
      python -m robustbench_snn evaluate --model "$model" --attack "$job" --seed 0 --compile -q --results-dir results
    fi
  done
done
