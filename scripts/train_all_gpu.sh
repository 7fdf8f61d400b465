#!/usr/bin/env bash
# One command for whoever has a GPU for half an hour: train the shipped lifters side by side on one GPU within one
# time budget, then ship each one (float16 weights, the full Human3.6M protocol, its evaluation JSON).
#
#   bash scripts/train_all_gpu.sh DATA OUT_DIR [MINUTES]
#
# DATA: data_3d_h36m_17j.npz, or its packed copy (`video3d data pack`, 20 MB: quick to move to a GPU machine).
# MINUTES (default 30) covers everything: TRAIN_SHARE of it (default 0.75) for training, each run sizing its own
# schedule with `video3d train --budget`, the rest for the evaluations. Each run's recipe is its lifter's default
# (`video3d train --help`, --recipe) with the project's augmentations for detector input; validation watches
# S9/S11 and OUT_DIR/<lifter>_<frames>f/final.pt (the last epoch, not the best on S9/S11) is what is shipped.
#
# Environment: LIFTERS (default "gastnet:27 stcformer:27 poseformer:81"), DEVICE (default cuda), PYTHON (default
# python), EXTRA (more `video3d train` options for every run; the test uses it for tiny settings on a CPU),
# FINETUNE=1: each lifter whose weights are shipped (weights/<lifter>_<frames>f.pt) starts from them instead of
# random weights, with the recipe of STCFormer's shipped stage 2 (2026-11-23: --init, 300 warm-up steps, lr
# 4e-4 to a tenth, batch 256). Copy a result into weights/ only if it beats the shipped file in both figures the script
# prints: the protocol (GT 2D) and the detector-like check (GAST-Net's fine-tune of 2026-11-23 won on the first
# and lost 7.6 mm on the second, so it was not shipped).
# Writes OUT_DIR/<lifter>_<frames>f.pt + .eval.json and OUT_DIR/<lifter>_<frames>f.{train,eval}.log.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,20p' "$0" >&2
  exit 2
fi
data=$1
out=$2
minutes=${3:-30}
lifters=${LIFTERS:-"gastnet:27 stcformer:27 poseformer:81"}
device=${DEVICE:-cuda}
python=${PYTHON:-python}
here=$(cd "$(dirname "$0")" && pwd)
train_minutes=$("$python" -c "print(round($minutes * ${TRAIN_SHARE:-0.75}, 3))")
mkdir -p "$out"
echo "training ${lifters} on ${device} for ${train_minutes} min each, side by side" >&2

pids=()
for item in $lifters; do
  name=${item%%:*}
  frames=${item##*:}
  start=()
  shipped="$here/../weights/${name}_${frames}f.pt"
  if [ "${FINETUNE:-0}" = 1 ] && [ -f "$shipped" ]; then
    start=(--init "$shipped" --warmup-steps 300 --lr 4e-4 --batch-size 256)
  fi
  # shellcheck disable=SC2086  # EXTRA is a list of options
  "$python" -m video3d.cli train --lifter "$name" --frames "$frames" --data "$data" --out "$out/${name}_${frames}f" \
    --device "$device" --budget "${train_minutes}m" --noise 0.005 --joint-dropout 0.02 --coco-synthesis 0.5 \
    "${start[@]}" ${EXTRA:-} > "$out/${name}_${frames}f.train.log" 2>&1 &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
if [ $failed -ne 0 ]; then
  echo "a training run failed: see $out/*.train.log" >&2
  exit 1
fi

pids=()
for item in $lifters; do
  name=${item%%:*}
  frames=${item##*:}
  "$python" "$here/ship_weights.py" "$out/${name}_${frames}f/final.pt" "$out/${name}_${frames}f.pt" --data "$data" \
    --device "$device" > "$out/${name}_${frames}f.eval.log" 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
if [ $failed -ne 0 ]; then
  echo "an evaluation failed: see $out/*.eval.log" >&2
  exit 1
fi
for item in $lifters; do
  name=${item%%:*}
  frames=${item##*:}
  "$python" - "$out/${name}_${frames}f.eval.json" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
r, d = result["average"], result["detector_like_check"]["average"]
print(f"{sys.argv[1]}: MPJPE {r['mpjpe']:.1f} mm, P-MPJPE {r['p_mpjpe']:.1f} mm; "
      f"detector-like check MPJPE {d['mpjpe']:.1f} mm (compare with the shipped file's before copying)")
PY
done
