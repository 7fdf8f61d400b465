"""Record a detector's 2D errors on rendered clips of the training subjects: the bank ``video3d train
--detector-errors`` replays (``video3d/detector_errors.py``).

    python scripts/detector_errors.py --subjects S1 S5 S6 S7 --clips 160 --seed 1 \
        --clips-dir runs/wild_train --out runs/yolo_errors.npz [--detector PATH] [--window 81 --stride 8]

Each clip (``benchmarks/wild_clips.py``: motion capture on the mannequin, a random camera and look) is detected
as ``benchmarks/wild.py`` detects (cached beside the clip), then goes through ``pipeline.lift``'s own
preparation of the lifter input (``pipeline.lifter_inputs``: swap repair, COCO -> H36M-17, gap filling, rescale
to the typical size, normalisation): the input the lifter would get is recorded, and the true 2D goes through the same
normalisation and rescale. Their difference, over windows of ``--window`` frames every ``--stride``, is the
bank. Only S1 S5 S6 S7 S8 may be used (S9 and S11 are the test subjects); the default leaves S8 out too, for
tuning on it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.wild import SHARED_DETECTOR, detect_clip, detection_path  # noqa: E402
from benchmarks.wild_clips import generate  # noqa: E402
from video3d.detector_errors import (ARMS, LEGS, VIEW_BINS, ErrorBank, exchange_index, mirrored,  # noqa: E402
                                     view_azimuth, view_bin)
from video3d.geometry import normalize_screen_coordinates, pose_spread, rescale_about_root  # noqa: E402

TRAINING_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")


def lifter_inputs(result, model) -> tuple[list[tuple[int, int, np.ndarray]], float]:
    """What ``pipeline.lift`` hands ``model`` for the first person, with reconstruct's defaults and no smoothing:
    [(start, stop, input (n, 17, 2))] and the rescale factor (``pipeline.lifter_inputs``, which lift calls)."""
    from video3d.options import ReconstructOptions
    from video3d.pipeline import lifter_inputs as prepare

    gap = max(0, int(round(ReconstructOptions().max_gap * result.fps)))
    prepared = prepare(result.persons_2d[0], result.frame_size, result.fps, model.input_spread, gap)
    return [(s, e, x) for (s, e), x in prepared.segments.items()], prepared.scale


def swapped_groups(x: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(T, 2): whether x's legs / arms are nearer the truth with left and right exchanged."""
    out = np.zeros((len(x), 2), bool)
    for g, pairs in enumerate((LEGS, ARMS)):
        joints = [j for pair in pairs for j in pair]
        ex = exchange_index(pairs)
        d_as = np.linalg.norm(x[:, joints] - truth[:, joints], axis=-1).mean(1)
        d_ex = np.linalg.norm(x[:, ex][:, joints] - truth[:, joints], axis=-1).mean(1)
        out[:, g] = d_ex < d_as
    return out


def clip_windows(x: np.ndarray, truth_2d: np.ndarray, truth_3d: np.ndarray, window: int, stride: int):
    """Bank entries of one segment: residuals (n, L, 17, 2), swaps (n, L, 2), views (n,)."""
    swapped = swapped_groups(x, truth_2d)
    fixed = x.copy()
    for g, pairs in enumerate((LEGS, ARMS)):
        ex = exchange_index(pairs)
        fixed[swapped[:, g]] = fixed[swapped[:, g]][:, ex]
    size = pose_spread(truth_2d)[:, None, None]
    residual = (fixed - truth_2d) / size
    views = view_bin(view_azimuth(torch.from_numpy(truth_3d.astype(np.float32)))).numpy()
    entries = []
    for s in range(0, len(x) - window + 1, stride):
        entries.append((residual[s:s + window], swapped[s:s + window], int(views[s + window // 2])))
    return entries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subjects", nargs="+", default=["S1", "S5", "S6", "S7"])
    ap.add_argument("--clips", type=int, default=160)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--clips-dir", type=Path, default=ROOT / "runs" / "wild_train")
    ap.add_argument("--detector", default=None)
    ap.add_argument("--lifter", default="gastnet", help="whose input preparation (receptive field, input size)")
    ap.add_argument("--window", type=int, default=81)
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    bad = [s for s in args.subjects if s not in TRAINING_SUBJECTS]
    if bad:
        raise SystemExit(f"{' '.join(bad)}: not a training subject ({' '.join(TRAINING_SUBJECTS)})")

    from video3d.detector import PoseDetector
    from video3d.lifters import create_lifter

    detector = args.detector or os.environ.get("VIDEO3D_DETECTOR") or str(SHARED_DETECTOR)
    start = time.perf_counter()
    pairs = generate(args.subjects, args.clips, args.seconds, args.seed, args.clips_dir, verbose=True)
    print(f"{len(pairs)} clips ({time.perf_counter() - start:.0f} s)", flush=True)
    model = create_lifter(args.lifter, device="cpu")
    det = None
    residuals, swaps, views = [], [], []
    no_person = 0
    try:
        for video, gtp in pairs:
            with np.load(gtp) as d:
                gt = {k: d[k] for k in d.files}
            if det is None and not detection_path(video).is_file():
                det = PoseDetector(detector, device="cpu", fps=float(gt["fps"]))
            result, _, _ = detect_clip(video, gt, det, detector, "cpu")
            if result is None:
                no_person += 1
                continue
            w, h = (int(v) for v in gt["frame_size"])
            segs, factor = lifter_inputs(result, model)
            truth = rescale_about_root(normalize_screen_coordinates(gt["keypoints_2d"].astype(np.float32), w, h),
                                       factor)
            for s, e, x in segs:
                for r, sw, v in clip_windows(x, truth[s:e], gt["keypoints_3d"][s:e], args.window, args.stride):
                    residuals.append(r)
                    swaps.append(sw)
                    views.append(v)
            print(f"{video.stem}: {len(segs)} segment(s), {len(residuals)} windows so far", flush=True)
    finally:
        if det is not None:
            det.close()
    if not residuals:
        raise SystemExit("no windows: no clip had a person over a whole window")
    bank = ErrorBank(np.stack(residuals).astype(np.float32), np.stack(swaps), np.array(views, np.int64),
                     {"detector": Path(detector).name, "subjects": " ".join(args.subjects), "clips": str(args.clips),
                      "seed": str(args.seed), "seconds": str(args.seconds), "lifter_input": args.lifter,
                      "window": str(args.window), "stride": str(args.stride),
                      "made_by": "scripts/detector_errors.py"})
    bank = mirrored(bank)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    bank.save(args.out)
    r = bank.residual
    norm = np.linalg.norm(r, axis=-1)  # (N, L, 17)
    print(f"\n{args.out}: {len(r)} windows of {bank.window} frames (with their mirror images); "
          f"{no_person} clips without a person")
    print("error per joint (units of the pose size), median / 90th percentile:")
    from video3d.layouts import H36M17

    for j, name in enumerate(H36M17.joints):
        print(f"  {name:<14} {np.median(norm[..., j]):.3f} / {np.percentile(norm[..., j], 90):.3f}")
    print("per view bin (0 = facing the camera): windows, median error, legs / arms swapped")
    for v in range(VIEW_BINS):
        m = bank.view == v
        if m.any():
            print(f"  {v} ({v * 360 / VIEW_BINS:+4.0f} deg): {m.sum():5d}  {np.median(norm[m]):.3f}  "
                  f"{bank.swapped[m][..., 0].mean():.1%} / {bank.swapped[m][..., 1].mean():.1%}")


if __name__ == "__main__":
    main()
