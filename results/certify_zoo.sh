#!/usr/bin/env bash
# The commands that produced the `certify` rows in results/fashion-mnist.jsonl: randomized-smoothing
# certificates for the zoo's RSC and Poisson models on the first 500 test images.
#   bash results/certify_zoo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for model in fmnist_rsc1_s0.05 fmnist_rsc1_s0.1 fmnist_rsc1_s0.2 fmnist_rsc1_s0.3 fmnist_ersct_s0.2 fmnist_snn_poisson \
             fmnist_rsc2_s0.1 fmnist_rsc2_s0.2; do
  python -m robustbench_snn certify --model "$model" --n0 100 --n 1000 --alpha 0.001 -n 500 --seed 0 --compile -q
done
