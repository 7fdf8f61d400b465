"""Do planted feet stay put, and does the path stay the person's? The stance-foot lock of ``video3d.world``
(``lock_stance_feet``) on the rendered clips of ``benchmarks/wild.py`` (known truth), against no lock.

    python benchmarks/foot_lock.py [--clips-dir benchmarks/.wild_cache_s8] [--fades 0,1,2,4,8]

Uses the clips and YOLO detections ``benchmarks/wild.py`` cached (run it first; ``--subjects S8 --seed 2
--clips-dir benchmarks/.wild_cache_s8`` is the tuning set, the default cache S9/S11 the report). Each clip is
lifted with the default lifter and placed as ``reconstruct`` does (trajectory on, 'ground'), then per clip:
the root's path length against the truth's (jitter makes a path long), the error of the root's net displacement
over 1 s windows, and ``metrics.foot_sliding`` (its contact test is height only, so the truth's own figure is
printed beside: a swing foot passing low counts too). Fade 0 means no lock. Prints the means over the clips.
"""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import video3d.world as world  # noqa: E402
from video3d.metrics import foot_sliding  # noqa: E402
from video3d.pipeline import lift, place  # noqa: E402
from video3d.results import load_npz  # noqa: E402


def root_figures(poses: np.ndarray, truth: np.ndarray, fps: float) -> tuple[float, float, float]:
    """(|path length - truth's| m, mean |1-s net displacement - truth's| m, foot sliding m/s) of one person."""
    path = np.nansum(np.linalg.norm(np.diff(poses[:, 0, :2], axis=0), axis=-1))
    true_path = np.linalg.norm(np.diff(truth[:, 0, :2], axis=0), axis=-1).sum()
    k = max(1, int(round(fps)))
    d = np.linalg.norm(poses[k:, 0, :2] - poses[:-k, 0, :2], axis=-1)
    dt = np.linalg.norm(truth[k:, 0, :2] - truth[:-k, 0, :2], axis=-1)
    return abs(path - true_path), float(np.nanmean(np.abs(d - dt))), foot_sliding(poses, fps)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips-dir", type=Path, default=ROOT / "benchmarks" / ".wild_cache")
    ap.add_argument("--fades", default="0,1,2,4,8", help="comma-separated fade times (s); 0: no lock")
    args = ap.parse_args()
    files = sorted(glob.glob(str(args.clips_dir / "*_yolo.npz")))
    if not files:
        sys.exit(f"no cached detections in {args.clips_dir}: run benchmarks/wild.py first")
    clips = []
    for f in files:
        with np.load(f.replace("_yolo.npz", "_gt.npz")) as gt:
            truth, fps = gt["keypoints_3d_world"].astype(np.float64), float(gt["fps"])
        grounded = truth - np.array([0.0, 0.0, np.percentile(np.minimum(truth[:, 3, 2], truth[:, 6, 2]), 5)])
        clips.append((lift(load_npz(f), "gastnet"), grounded, fps))
    print(f"{len(clips)} clips in {args.clips_dir}; truth's foot sliding by the same measure: "
          f"{np.mean([foot_sliding(t, fps)[0] for _, t, fps in clips]):.2f} m/s")
    original = world.lock_stance_feet
    try:
        for fade in (float(x) for x in args.fades.split(",")):
            if fade == 0:
                world.lock_stance_feet = lambda poses, fps, **kw: poses
            else:
                world.lock_stance_feet = lambda poses, fps, _fade=fade, **kw: original(poses, fps, fade_s=_fade, **kw)
            rows = [root_figures(place(r, trajectory=True, rebase="ground").world.poses[0], t, fps)
                    for r, t, fps in clips]
            path, disp, slide = np.mean(rows, axis=0)
            name = "no lock" if fade == 0 else f"fade {fade:g} s"
            print(f"{name:>10}: |path - truth| {path:.2f} m, 1-s displacement error {disp:.2f} m, "
                  f"foot sliding {slide:.2f} m/s", flush=True)
    finally:
        world.lock_stance_feet = original


if __name__ == "__main__":
    main()
