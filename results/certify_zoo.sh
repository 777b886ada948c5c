#!/usr/bin/env bash
# The commands that produced the `certify` rows in results/fashion-mnist.jsonl: randomized-smoothing
# certificates for the zoo's RSC and Poisson models on the first 500 test images.
#   bash results/certify_zoo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python -m robustbench_snn sweep results/sweeps/zoo-certify.yaml --workers 2 --results-dir results
# Attacks on the same smoothed classifiers (L2 PGD, 200 images), certified in the same run; a row is
# flagged below_certified if the attack fools a sample inside its certified radius.
for spec in "fmnist_rsc1_s0.1 0.25" "fmnist_rsc1_s0.2 0.25" "fmnist_rsc1_s0.2 0.5" "fmnist_rsc1_s0.3 0.25" "fmnist_rsc1_s0.3 0.5" \
            "fmnist_rsc1_s0.3 1.0" "fmnist_snn_poisson 0.25"; do
  set -- $spec
  python -m robustbench_snn evaluate --model "$1" --smoothed --attack pgd --norm L2 --eps "$2" -n 200 --seed 0 --compile -q --results-dir results
done
