"""Small people: how many does the detector find, by their size in pixels, and what do --conf and --tile buy?

    VIDEO3D_DETECTOR=../shared/weights/yolov8n-pose_int8_openvino_model python benchmarks/small_people.py
        [--video ../shared/videos/gastnet_apart.avi] [--frames 60] [--scales 4,6,8,12,16,24]

A street camera's pedestrians made from a real clip: each frame of the video (two people walking, 1920x1080)
is scaled down by 1/s and tiled into a grid of copies (at most 4 x 4, centred on a grey 1920 x 1080 canvas),
so every person appears at a known size and place. The reference is the detector's own tracks on the video at
full size (people 500-1000 px tall there); a reference person counts as found in a frame of the mosaic when a
tracked detection (``PoseDetector.track``, so ByteTrack's thresholds gate it as in ``reconstruct``) overlaps
their scaled box by IoU >= 0.5. Printed per scale and setting: the people's median height in pixels, the
fraction found, the keypoint error of those found (median over the joints the reference sees with confidence
>= 0.5, in % of the person's height), detections that match no one per frame, and frames per second (one run,
the settings in turn on the same frames, so the ratios are comparable).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from video3d.detector import DETECTOR_ENV, PoseDetector, box_iou  # noqa: E402
from video3d.video import probe, read_frames  # noqa: E402

CANVAS = (1920, 1080)
MAX_GRID = 4
SETTINGS = {  # name -> PoseDetector keywords
    "default": {},
    "--conf 0.1": {"conf": 0.1},
    "--tile": {"tile": True},
    "--tile --conf 0.1": {"tile": True, "conf": 0.1},
}


def mosaic(frame: np.ndarray, scale: int) -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    """The frame shrunk by 1/scale, copied over a grid on a grey canvas; the copies' (x offset, y offset, factor)."""
    h, w = frame.shape[:2]
    f = 1.0 / scale
    small = cv2.resize(frame, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    n = min(scale, MAX_GRID)
    sh, sw = small.shape[:2]
    canvas = np.full((CANVAS[1], CANVAS[0], 3), 114, np.uint8)
    x0, y0 = (CANVAS[0] - n * sw) // 2, (CANVAS[1] - n * sh) // 2
    places = []
    for i in range(n):
        for j in range(n):
            x, y = x0 + j * sw, y0 + i * sh
            canvas[y:y + sh, x:x + sw] = small
            places.append((x, y, sw / w))
    return canvas, places


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", type=Path, default=ROOT.parent / "shared" / "videos" / "gastnet_apart.avi")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--scales", default="4,6,8,12,16,24", help="comma-separated shrink factors")
    ap.add_argument("--detector", default=os.environ.get(DETECTOR_ENV))
    args = ap.parse_args()
    info = probe(args.video)
    frames = []
    for k, frame in enumerate(read_frames(info)):
        if k >= args.frames:
            break
        frames.append(frame)
    with PoseDetector(args.detector, device="cpu", fps=info.fps) as det:
        reference = [[d for d in det.track(f)] for f in frames]
    print(f"{args.video.name}: {len(frames)} frames of {info.width}x{info.height}, "
          f"{sum(map(len, reference))} reference people (median height "
          f"{np.median([d.box[3] - d.box[1] for r in reference for d in r]):.0f} px); detector {det.name}")
    print(f"{'shrink':>6} {'height px':>9}  {'setting':<18} {'found':>6} {'kp err %h':>9} {'unmatched/fr':>12} "
          f"{'frames/s':>8}")
    for scale in (int(s) for s in args.scales.split(",")):
        canvases = [mosaic(f, scale) for f in frames]
        heights = [(d.box[3] - d.box[1]) * p[2] for (_, places), r in zip(canvases, reference) for d in r
                   for p in places]
        for name, kwargs in SETTINGS.items():
            found = total = unmatched = 0
            errors = []
            with PoseDetector(args.detector, device="cpu", fps=info.fps, **kwargs) as d:
                d.track(canvases[0][0])  # load and compile outside the timing
                d.start_video(info.fps)
                start = time.perf_counter()
                tracked = [d.track(canvas) for canvas, _ in canvases]
                fps = len(canvases) / (time.perf_counter() - start)
            for (canvas, places), refs, dets in zip(canvases, reference, tracked):
                boxes = np.array([x.box for x in dets]).reshape(-1, 4)
                used = np.zeros(len(dets), bool)
                for x, y, f in places:
                    for ref in refs:
                        total += 1
                        box = ref.box * f + np.array([x, y, x, y])
                        if not len(dets):
                            continue
                        iou = box_iou(box[None], boxes)[0]
                        best = int(np.argmax(iou))
                        if iou[best] >= 0.5:
                            found += 1
                            used[best] = True
                            ok = ref.keypoint_confidence >= 0.5
                            truth = ref.keypoints[ok] * f + np.array([x, y])
                            err = np.linalg.norm(dets[best].keypoints[ok] - truth, axis=-1)
                            errors.append(100 * np.nanmedian(err) / (box[3] - box[1]))
                unmatched += int((~used).sum())
            print(f"{scale:>6} {np.median(heights):>9.0f}  {name:<18} {found / max(total, 1):>6.1%} "
                  f"{np.median(errors) if errors else float('nan'):>9.1f} {unmatched / len(canvases):>12.2f} "
                  f"{fps:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
