"""How does a lifter cope with people smaller or larger in the frame than in its training data?

    python benchmarks/input_scale.py [--lifter gastnet] [--weights PATH] [--frames 300] [--cameras 0]

The lifters take 2D normalised by the frame width (the papers' convention), so a person filmed smaller
than Human3.6M's actors (a wide shot of a distant player) gives inputs of a size they never
saw. This prints the size (``video3d.geometry.pose_spread``, median per take) of the training takes (S1,
S5, S6, S7, S8, four cameras), then scales the GT 2D of the test takes (S9, S11) about the pelvis by each
factor and lifts it three ways, through the same code as ``video3d lift``: as is (``--no-rescale``);
clamped into the 2nd-98th percentile of the training sizes (an alternative, left unchanged when inside);
and always scaled to the typical training size (``video3d.geometry.fit_scale`` to ``Lifter.input_spread``,
what ``lift`` and ``reconstruct`` do by default). P1 MPJPE and P2 P-MPJPE in mm, all in one run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from video3d.data.h36m import TEST_SUBJECTS, TRAIN_SUBJECTS, load_sequences  # noqa: E402
from video3d.evaluation import sequence_errors  # noqa: E402
from video3d.geometry import fit_scale, pose_spread, rescale_about_root  # noqa: E402
from video3d.lifters import create_lifter  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/h36m/data_3d_h36m_17j.npz"))
    parser.add_argument("--lifter", default="gastnet")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--frames", type=int, default=300, help="first frames of each test take")
    parser.add_argument("--cameras", default="0")
    parser.add_argument("--scales", default="0.25,0.5,0.75,1,1.5,2")
    args = parser.parse_args()
    start = time.perf_counter()
    lifter = create_lifter(args.lifter, weights=args.weights, device="cpu")

    train = load_sequences(args.data, TRAIN_SUBJECTS)
    medians = np.array([np.median(pose_spread(s.normalized_2d())) for s in train])
    del train
    print(f"training takes: {len(medians)}; median size per take: min {medians.min():.3f}, "
          f"p2 {np.percentile(medians, 2):.3f}, p50 {np.median(medians):.3f}, p98 {np.percentile(medians, 98):.3f}, "
          f"max {medians.max():.3f}; the lifter's typical size: {lifter.input_spread:.3f}")
    lo, hi = np.percentile(medians, [2, 98])

    seqs = load_sequences(args.data, TEST_SUBJECTS, cameras=args.cameras.split(","))
    inputs = [s.normalized_2d()[:args.frames] for s in seqs]
    truths = [s.positions_3d[:args.frames] for s in seqs]
    print(f"{len(seqs)} test takes ({', '.join(TEST_SUBJECTS)}, camera(s) {args.cameras}, first {args.frames} frames); "
          f"{args.lifter}, weights {lifter.weights_path}")
    print(f"{'scale':>6s} {'as is P1':>9s} {'P2':>6s} {'clamped P1':>11s} {'P2':>6s} {'clamped':>8s} "
          f"{'to typical P1':>14s} {'P2':>6s}")
    for scale in [float(v) for v in args.scales.split(",")]:
        row, rescaled = [], 0
        for mode in ("as is", "clamped", "to typical"):
            sums = {"mpjpe": 0.0, "p_mpjpe": 0.0, "frames": 0}
            for x, truth in zip(inputs, truths):
                x = rescale_about_root(x, scale)
                if mode == "clamped":
                    size = float(np.median(pose_spread(x)))
                    rescaled += not lo <= size <= hi
                    x = rescale_about_root(x, float(np.clip(size, lo, hi)) / size)
                elif mode == "to typical":
                    x = rescale_about_root(x, fit_scale(x, lifter.input_spread))
                errors = sequence_errors(lifter.predict(x), truth)
                for k in sums:
                    sums[k] += errors[k]
            row += [sums["mpjpe"] / sums["frames"], sums["p_mpjpe"] / sums["frames"]]
        print(f"{scale:6.2f} {row[0]:9.1f} {row[1]:6.1f} {row[2]:11.1f} {row[3]:6.1f} {rescaled:>4d}/{len(seqs):<3d} "
              f"{row[4]:14.1f} {row[5]:6.1f}", flush=True)
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
