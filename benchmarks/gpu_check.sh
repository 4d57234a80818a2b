#!/usr/bin/env bash
# The first thing a GPU machine runs: what the CPU cannot check, in this order, each step's results
# as JSON under $OUT, <benchmark>_<what>_<device>.json, naming the device, the torch version and the
# commit (benchmarks/record.py) (sized for under 8 minutes on one H100/H200; not yet timed on one: on 2
# shared CPU cores `--device cpu` takes ~2 minutes, world included):
#   pretrain  the test-scale `cycle pretrain` on CUDA with the device data path: finite loss, 0 skipped
#             frames (benchmarks.pretrain_check)
#   feed      the training loop's feed (nvJPEG, prefetching on its own stream) against a busy main
#             stream: the views of a quiet, one-batch-at-a-time run (benchmarks.feed_race)
#   model     the model step at batch 32 (an 8-GPU job's share) and 256, R18 and R50, paper settings
#   pipeline  end to end, both data paths (cpu, device), on frames of R2V2's size, R18 and R50
#   compile   (only when named) the model step with torch.compile-d encoders against eager, R18
# The long steps (evaluations, separation, science) are benchmarks/gpu_suite.sh's.
#
#   OUT=benchmarks/results/gpu_check bash benchmarks/gpu_check.sh [--device cuda|cpu] [step ...]
#   --device cpu: the same steps at small sizes on the CPU (minutes), to check the script end to end.
#   COMMIT=<hash>: the commit the results name, where the copy has no .git (default: git's HEAD).
#
# A GPU machine without network may lack modules: they are listed first, then installed from
# benchmarks/wheels/ (ignored by git; travels with the working tree), filled beforehand on a machine
# with network by `bash benchmarks/gpu_wheels.sh PYTHON_VERSION` (the GPU machine's, e.g. 3.12).
# Every step runs even when an earlier one failed; the exit status says whether all passed.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda
if [[ ${1:-} == --device ]]; then DEVICE=$2; shift 2; fi
STEPS=${*:-pretrain feed model pipeline}
PYTHON=${PYTHON:-python3}
OUT=${OUT:-benchmarks/results/gpu_check}
WORK=${WORK:-/tmp/gpu_check}
mkdir -p "$OUT" "$WORK"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MLFLOW_DISABLE_TELEMETRY=true
has() { [[ " $STEPS " == *" $1 "* ]]; }

# Modules the steps import, and the wheels that provide them (no dependencies pulled: the list is complete;
# numpy and pillow come with torch and torchvision, and gpu_wheels.sh leaves them out).
declare -A WHEELS=([kornia]="kornia kornia_rs" [av]=av [got10k]=got10k [six]=six [wget]=wget [yaml]=pyyaml
                   [tqdm]=tqdm [PIL]=pillow [numpy]=numpy [psutil]=psutil)
missing() { for module in "${!WHEELS[@]}"; do "$PYTHON" -c "import $module" 2>/dev/null || echo "$module"; done; }
"$PYTHON" --version
"$PYTHON" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
MISSING=$(missing | sort | tr '\n' ' ')
echo "missing modules: ${MISSING:-none}"
if [[ -n $MISSING ]]; then
  if compgen -G "benchmarks/wheels/*.whl" > /dev/null; then
    packages=$(for module in $MISSING; do echo "${WHEELS[$module]}"; done)
    # shellcheck disable=SC2086
    "$PYTHON" -m pip install --quiet --no-index --no-deps --find-links benchmarks/wheels $packages \
      || "$PYTHON" -m pip install --quiet --user --no-index --no-deps --find-links benchmarks/wheels $packages \
      || echo "could not install $packages from benchmarks/wheels (for this Python? see benchmarks/gpu_wheels.sh)"
    MISSING=$(missing | sort | tr '\n' ' ')
    echo "still missing: ${MISSING:-none}"
  else
    echo "benchmarks/wheels/ holds no wheels: run benchmarks/gpu_wheels.sh $("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")') beforehand"
  fi
fi
if [[ $DEVICE == cuda ]]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  SCALE=paper MODEL=(--scale paper --device cuda --steps 5 --rounds 3) BATCHES=(32 256)
  PIPE=(--scale paper --device cuda --steps 2 --rounds 1 --pipeline-steps ${PIPELINE_STEPS:-30} --batch 256)
  WORKERS=${PIPELINE_WORKERS:-12} FEED=(--scale paper --device cuda --batches 20) VIDEOS=512
else  # small sizes: test-scale settings, small frames, few steps
  SCALE=test MODEL=(--scale test --device cpu --steps 1 --rounds 1) BATCHES=(16 32)
  PIPE=(--scale test --device cpu --steps 1 --rounds 1 --pipeline-steps 3 --frame-size 128 228)
  WORKERS=2 FEED=(--scale test --device cpu --batches 3 --frame-size 128 228 --matrix 256) VIDEOS=64
fi
THROUGHPUT=$OUT/pretrain_throughput_$SCALE  # the model, pipeline and compile steps' results: ..._<what>_$DEVICE.json
# The R2V2 videos of the feed and pipeline steps (VIDEOS: 2 batches of 256 an epoch; ~0.1 CPU s a video
# at R2V2's frame size), written once in a folder named after their frame size and kept for a rerun.
WORLD=(--set "world.root=$WORK/world-r2v2" --set world.videos=$VIDEOS --set world.val_videos=8
       --set data.r2v2_subset=false --set pretrain.workers=$WORKERS)
FAILED=()
step() {  # step NAME COMMAND...: run it, its output in $OUT/NAME.log
  echo "== $1"
  if "${@:2}" > "$OUT/$1.log" 2>&1; then tail -n 3 "$OUT/$1.log"; else FAILED+=("$1"); tail -n 20 "$OUT/$1.log"; fi
}

# 1. The test-scale `cycle pretrain` with the device data path (decoding and MoCo v2 on the device).
pretrain() {
  local world=$WORK/world-test results=$WORK/results
  local sets=(--scale test --set "world.root=$world" --set "results=$results" --set mlflow.enabled=false)
  "$PYTHON" -m cycle_pkg.cli world "${sets[@]}" || return 1
  rm -rf "$results/pretrain/r18"
  "$PYTHON" -m cycle_pkg.cli pretrain "${sets[@]}" --set "data.r2v2_root=$world/r2v2" \
    --set "data.imagenet_root=$world/imagenet" --set pretrain.augment_on=device --set pretrain.workers=2 \
    --log "$OUT/pretrain_cycle.log" || return 1
  "$PYTHON" -m benchmarks.pretrain_check "$results/pretrain/r18/summary.json" --device "$DEVICE" \
    --out "$OUT/pretrain_check_test_$DEVICE.json"
}
has pretrain && step pretrain pretrain

# 2. The device feed against a busy main stream.
has feed && step feed "$PYTHON" -m benchmarks.feed_race "${FEED[@]}" "${WORLD[@]}" --out "$OUT/feed_race_${SCALE}_$DEVICE.json"

# 3. The model step at the per-GPU batch of an 8-GPU job (32: its keys BatchNorm-ed as one group, as
#    that GPU's share) and at 256 (one process: the paper's groups of 32).
model() {
  for backbone in resnet18 resnet50; do
    for batch in "${BATCHES[@]}"; do
      local group=()
      [[ $batch == "${BATCHES[0]}" ]] && group=(--set "model.key_bn_group=$batch")
      "$PYTHON" -m benchmarks.pretrain_throughput "${MODEL[@]}" --batch "$batch" --backbone $backbone "${group[@]}" \
        --out "${THROUGHPUT}_${backbone}_b${batch}_$DEVICE.json" || return 1
    done
  done
}
has model && step model model

# 4. End to end, both data paths, on frames of R2V2's size (the world's R2V2 part, written once and kept).
pipeline() {
  local sets=("${WORLD[@]}" --set "data.r2v2_shards=$WORK/shards"
              --set data.shard_videos=$((VIDEOS / 8)) --set data.shard_streams=$WORKERS)
  for backbone in resnet18 resnet50; do
    "$PYTHON" -m benchmarks.pretrain_throughput "${PIPE[@]}" --backbone $backbone --pipeline \
      --augment-on cpu device "${sets[@]}" --out "${THROUGHPUT}_pipeline_${backbone}_$DEVICE.json" || return 1
  done
}
has pipeline && step pipeline pipeline

# 5. (not by default: compiling takes minutes) Does torch.compile of the encoders pay? R18, both batches,
#    compiled against eager in alternating rounds (compile_speedup above 1: it pays).
compiled() {
  for batch in "${BATCHES[@]}"; do
    local group=()
    [[ $batch == "${BATCHES[0]}" ]] && group=(--set "model.key_bn_group=$batch")
    "$PYTHON" -m benchmarks.pretrain_throughput "${MODEL[@]}" --batch "$batch" --backbone resnet18 --compile "${group[@]}" \
      --out "${THROUGHPUT}_compiled_resnet18_b${batch}_$DEVICE.json" || return 1
  done
}
has compile && step compile compiled

# The issue's goals, where the steps ran: R18 end to end (device path) against its model step at the
# largest batch (>= 0.9), and the smallest batch's per-sample cost against the largest's (<= 1.5).
"$PYTHON" - "$OUT" "$THROUGHPUT" "$DEVICE" "${BATCHES[@]}" <<'GOALS' || true
import json, sys
from pathlib import Path
from benchmarks.record import write_result
out, throughput, device, small, large = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
def read(what, *keys):
    path = Path(f"{throughput}_{what}_{device}.json")
    value = json.loads(path.read_text()) if path.is_file() else None
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value
full = ("model_step", "pairs_per_second", "intra_video+cycle")
step_large, step_small = read(f"resnet18_b{large}", *full), read(f"resnet18_b{small}", *full)
end_to_end = read("pipeline_resnet18", "pipeline", "device", "pairs_per_second")
goals = {
    "r18_end_to_end_over_model_step": end_to_end / step_large if end_to_end and step_large else None,
    "r18_per_sample_cost_small_over_large_batch": step_large / step_small if step_large and step_small else None,
    "batches": [int(small), int(large)],
}
print("goals (>= 0.9, <= 1.5):")
write_result(goals, out / f"gpu_check_goals_{device}.json", None, command="bash benchmarks/gpu_check.sh (its goals)")
GOALS
echo "results in $OUT; failed steps: ${FAILED[*]:-none}"
[[ ${#FAILED[@]} -eq 0 ]]
