#!/usr/bin/env bash
# The GPU checks and benchmarks of pretraining, in one go (a lent GPU machine has torch and
# torchvision but not MLflow: tracking is switched off here).
#   OUT=/path/for/results bash benchmarks/gpu_suite.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# 1. The CUDA path of `cycle pretrain` (bf16 autocast, channels_last, pinned memory) at the test scale.
python3 -m cycle_pkg.cli world --scale test --set world.root=/tmp/world-test
python3 -m cycle_pkg.cli pretrain --scale test --set world.root=/tmp/world-test \
  --set data.r2v2_root=/tmp/world-test/r2v2 --set results=/tmp/results --set mlflow.enabled=false \
  --set pretrain.workers=2 --log "$OUT/pretrain_cuda.log" 2> "$OUT/pretrain_cuda.stderr"
python3 -c "import json; s=json.load(open('/tmp/results/pretrain/r18/summary.json')); print('cuda pretrain:', s['device'], s['steps'], 'steps, loss', s['final_metrics']['loss'])"

# 2. Model step at paper settings (224 px, batch 256, queues 65536/81920, m 16384): pairs/s,
#    peak memory, and the cycle loss's extra step time as a ratio against intra-video alone.
for backbone in resnet18 resnet50; do
  python3 benchmarks/pretrain_throughput.py --scale paper --device cuda --batch 256 --backbone $backbone \
    --steps 5 --rounds 5 --out "$OUT/paper_${backbone}_cuda.json"
done

# 3. End to end with the data pipeline (synthetic frames, MoCo v2 augmentations at 224 px, 12 loader workers).
python3 benchmarks/pretrain_throughput.py --scale paper --device cuda --batch 256 --steps 2 --rounds 1 \
  --pipeline --pipeline-steps 20 --set world.root=/tmp/world-demo \
  --set data.r2v2_root=/tmp/world-demo/r2v2 --set pretrain.workers=12 --out "$OUT/paper_pipeline_cuda.json"
