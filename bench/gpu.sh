#!/usr/bin/env bash
# The CUDA paths, checked on a GPU in one short run (under 8 minutes on one GPU):
#   1. feature parity: the torch radiomics features on the GPU against scikit-image on real images (bench/features.py, within_tolerance),
#   2. bench/inference.py on CUDA (batch 1, 8, 64),
#   3. two epochs of mixed-precision training (radiomicnet-run --fp16) on BUSI when the data are there, else on the synthetic set,
#      and the training throughput with --fp16 (bench/train.py).
# The CSVs land in bench/results/ (features.csv, inference-cuda.csv, train.csv); commit them.
# Without a CUDA device it says so and exits with status 2.
set -euo pipefail
cd "$(dirname "$0")/.."
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "bench/gpu.sh: no CUDA device (torch.cuda.is_available() is False): nothing checked; run it on a machine with a GPU" >&2
  exit 2
fi
python -c "import torch; print('GPU:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"
data=$(python -c "from radiomicnet.core import resolve_data_dir; d = resolve_data_dir(); print(d if (d/'BUSI').is_dir() else '')")
dataset=$([ -n "$data" ] && echo busi || echo synthetic)
start=$(date +%s)
step() { echo; echo "== $1 ($(( $(date +%s) - start )) s so far)"; }

step "1/4 feature parity on the GPU (bench/features.py --device cuda)"
timeout 120 python bench/features.py --device cuda --n-images 64 --repeats 3
python - <<'EOF'
import csv, sys
row = list(csv.DictReader(open("bench/results/features.csv")))[-1]
print(f"parity: max relative error {row['max_relative_error']}, within tolerance: {row['within_tolerance']}")
sys.exit(0 if row["within_tolerance"] == "True" else 1)
EOF

step "2/4 inference on the GPU (bench/inference.py --device cuda)"
timeout 240 python bench/inference.py --device cuda --min-seconds 1 --max-repeats 30

step "3/4 two epochs of mixed-precision training on $dataset (radiomicnet-run --fp16)"
run_dir=$(mktemp -d)
timeout 180 radiomicnet-run --dataset "$dataset" --protocol paper --epochs 2 --fp16 --device cuda --out "$run_dir/run" | tail -n 25
rm -rf "$run_dir"

step "4/4 training throughput with mixed precision (bench/train.py --device cuda --fp16)"
timeout 120 python bench/train.py --dataset "$dataset" --device cuda --fp16 --steps 30

echo; echo "bench/gpu.sh: done in $(( $(date +%s) - start )) s; commit bench/results/*.csv"
