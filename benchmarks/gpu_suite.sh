#!/usr/bin/env bash
# The GPU checks and benchmarks, in one go (a lent GPU machine has torch and torchvision but may
# lack MLflow, PyAV or the got10k toolkit: tracking is switched off here, and an evaluation whose
# reader needs a missing package is reported as not run).
#   OUT=/path/for/results bash benchmarks/gpu_suite.sh [step ...]
# Steps (default: all): pretrain model pipeline decode eval separation science
# Results: <benchmark>_<what>_<device>.json (benchmarks/record.py), the evaluations' eval_<task>_test_cuda.json.
# The device data path needs kornia: where it is missing, WHEELS=/folder/with/kornia/wheels installs it offline.
# A first run on a GPU machine: benchmarks/gpu_check.sh (the checks of the GPU path, in minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
STEPS=${*:-pretrain model pipeline decode eval separation science}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
has() { [[ " $STEPS " == *" $1 "* ]]; }
module() { python3 -c "import $1" 2>/dev/null; }
if ! module kornia && [[ -n ${WHEELS:-} ]]; then python3 -m pip install --no-index --find-links "$WHEELS" kornia; fi
TEST=(--scale test --set world.root=/tmp/world-test --set results=/tmp/results --set mlflow.enabled=false)

# 1. The CUDA path of `cycle pretrain` (bf16 autocast, channels_last, pinned memory) at the test scale.
if has pretrain || has eval; then
  python3 -m cycle_pkg.cli world "${TEST[@]}"
  python3 -m cycle_pkg.cli pretrain "${TEST[@]}" --set data.r2v2_root=/tmp/world-test/r2v2 \
    --set data.imagenet_root=/tmp/world-test/imagenet --set pretrain.workers=2 --log "$OUT/pretrain_cuda.log" 2> "$OUT/pretrain_cuda.stderr"
  python3 -c "import json; s=json.load(open('/tmp/results/pretrain/r18/summary.json')); print('cuda pretrain:', s['device'], s['steps'], 'steps, loss', s['final_metrics']['loss'])"
fi

# 2. Model step at paper settings (224 px, batch 256, queues 65536/81920, m 16384): pairs/s,
#    peak memory, and the cycle loss's extra step time as a ratio against intra-video alone.
if has model; then
  for backbone in resnet18 resnet50; do
    python3 -m benchmarks.pretrain_throughput --scale paper --device cuda --batch 256 --backbone $backbone \
      --steps 5 --rounds 5 --out "$OUT/pretrain_throughput_paper_${backbone}_cuda.json"
  done
fi

# 3. End to end with the data pipeline of `cycle pretrain`, both data paths in one run: shards of the demo
#    world's frames (resized as at paper scale), MoCo v2 at 224 px, PIPELINE_WORKERS loader processes
#    (default 12) that augment (cpu) or only read the shards (device: decoding and augmentation batched on
#    the GPU). Per path: pairs/s, data_wait_fraction, CPU cores used, peak GPU memory; R18 and R50.
if has pipeline; then
  WORKERS=${PIPELINE_WORKERS:-12}
  DEMO=(--set world.root=/tmp/world-demo --set data.r2v2_root=/tmp/world-demo/r2v2 --set data.r2v2_subset=false
        --set data.r2v2_shards=/tmp/shards-demo --set pretrain.workers=$WORKERS --set data.shard_streams=$WORKERS)
  python3 -m cycle_pkg.cli world --scale demo "${DEMO[@]}"
  python3 -m cycle_pkg.cli data r2v2-shards --scale paper "${DEMO[@]}" > /dev/null
  for backbone in resnet18 resnet50; do
    python3 -m benchmarks.pretrain_throughput --scale paper --device cuda --batch 256 --backbone $backbone \
      --steps 2 --rounds 1 --pipeline --pipeline-steps ${PIPELINE_STEPS:-40} --augment-on cpu device "${DEMO[@]}" \
      --out "$OUT/pretrain_throughput_paper_pipeline_${backbone}_cuda.json"
  done
fi

# 4. Frame decoding from shards on the CPU and with nvJPEG on the GPU.
if has decode; then
  python3 -m benchmarks.shard_decode --device cuda --out "$OUT/shard_decode_cuda.json"
fi

# 5. The CUDA path of every evaluation on the test-scale pretraining checkpoint.
if has eval; then
  EVAL=("${TEST[@]}" --set eval.cache_dir=/tmp/cache --checkpoint /tmp/results/pretrain/r18/backbone.pt)
  for name in imagenet ucf101 got10k otb; do EVAL+=(--set "data.${name}_root=/tmp/world-test/$name"); done
  declare -A NEEDS=([linear]=torch [retrieval]=av [action]=av [track]=got10k)
  for task in linear retrieval action track; do
    needs=${NEEDS[$task]}
    if ! module "$needs"; then echo "cuda eval $task: not run ($needs is not installed)"; continue; fi
    python3 -m cycle_pkg.cli eval $task "${EVAL[@]}" --output "$OUT/eval_${task}_test_cuda.json" \
      --log "$OUT/eval_${task}_test_cuda.log" 2> "$OUT/eval_${task}_test_cuda.stderr"
    python3 -c "import json; r=json.load(open('$OUT/eval_${task}_test_cuda.json')); print('cuda eval $task:', {k: v for k, v in r['metrics'].items() if isinstance(v, (int, float))})"
  done
fi

# The world of the separation and science steps: the demo world with 384 UCF101 test queries, at the sizes
# of the separation results (the demo scale's 64 px before it moved to 32; tests/eval/test_separation.py reads them too).
MEASURED_SIZES=()
while IFS= read -r setting; do MEASURED_SIZES+=(--set "$setting"); done < benchmarks/separation_sizes.txt
QUERIES=(--set world.root=/tmp/world-demo --set world.ucf101_groups=12 --set world.ucf101_clips=4
         --set data.r2v2_root=/tmp/world-demo/r2v2 --set data.r2v2_subset=false
         --set data.r2v2_format=jpeg --set pretrain.workers=12 "${MEASURED_SIZES[@]}")
for name in imagenet ucf101; do QUERIES+=(--set "data.${name}_root=/tmp/world-demo/$name"); done
if has separation || has science; then python3 -m cycle_pkg.cli world --scale demo "${QUERIES[@]}" --jobs 8; fi

# 6. Do the evaluations tell a pretrained backbone from a random one at a GPU budget? SEPARATION_EPOCHS
#    demo epochs (default 400: 10000 steps, tests/eval/test_separation.py's budget), on that world, with a
#    backbone trained on the world's latent classes beside them.
if has separation; then
  EPOCHS=${SEPARATION_EPOCHS:-400}
  RESULT=$OUT/pretrained_vs_random_demo_${EPOCHS}ep_cuda
  python3 -m benchmarks.pretrained_vs_random --scale demo --epochs "$EPOCHS" --supervised-epochs 20 "${QUERIES[@]}" \
    --out "$RESULT.json" > "$RESULT.log" 2>&1
  python3 -c "import json; r=json.load(open('$RESULT.json')); print('pretrained - random:', r['pretrained_minus_random'], 'supervised - random:', r['supervised_minus_random'])"
fi

# 7. Table 4's loss settings (intra-image, intra-video, intra-video + cycle) over 3 seeds, each pretrained
#    SCIENCE_EPOCHS demo epochs (default 400: past the loss plateau, as in the separation step) on the same
#    world, evaluated with the linear probe and retrieval: means with 95% intervals, and whether they fall
#    in the paper's order. SCIENCE_WORKDIR keeps the runs, so that an interrupted step resumes.
if has science; then
  EPOCHS=${SCIENCE_EPOCHS:-400}
  RESULT=$OUT/table4_seeds_demo_${EPOCHS}ep_cuda
  python3 -m benchmarks.table4_seeds --scale demo --epochs "$EPOCHS" --seeds 0 1 2 "${QUERIES[@]}" \
    --workdir "${SCIENCE_WORKDIR:-/tmp/table4}" --out "$RESULT.json" > "$RESULT.log" 2>&1
  python3 -c "import json; r=json.load(open('$RESULT.json')); print('table 4 (mean, ci95):', r['mean_ci95']); print('in the paper order:', r['in_the_papers_order'])"
fi
