#!/usr/bin/env bash
# The commands that produced the attack rows of results/fashion-mnist.jsonl: the sweep files in
# results/sweeps/ (every Fashion-MNIST zoo model under `pgd` and `reliable`, and under `pgd` at
# the eps sweep that QTE integrates), and `audit`, each model's audit of `reliable` (every attack
# family alone, 200 images) in results/audits/. Each row also records its protocol, seed,
# versions, weights hash, code version and git commit. They write to the official store on
# purpose (--results-dir results). Rerunning reuses stored rows. WORKERS=2 fans the sweeps out on Ray.
#   bash results/evaluate_zoo.sh [zoo|zoo-eps|audit ...]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=("$@")
[ ${#jobs[@]} -gt 0 ] || jobs=(zoo zoo-eps)
for job in "${jobs[@]}"; do
  if [ "$job" = audit ]; then
    models=$(python -m robustbench_snn models list --dataset fashion-mnist --json \
             | python -c 'import json, sys; print(" ".join(card["name"] for card in json.load(sys.stdin)))')
    for model in $models; do
      python -m robustbench_snn audit "$model" -n 200 --seed 0 -q --results-dir results
    done
  else
    python -m robustbench_snn sweep "results/sweeps/$job.yaml" --workers "${WORKERS:-1}" --results-dir results
  fi
done
