"""Which smoothing preset should be the default? Jitter against error on Human3.6M, with detector-like 2D.

    python benchmarks/smoothing.py [--weights weights/gastnet_27f.pt] [--frames 600] [--cameras 0]

The GT 2D of the test subjects (S9, S11) is corrupted as a detector would (Gaussian noise, slowly drifting
offsets, pelvis/spine/thorax synthesised as from COCO keypoints; ``video3d.evaluation.Perturbation``),
lifted with each preset of ``video3d.pipeline.SMOOTHING`` through the same code as ``video3d lift``, and
compared with the truth: MPJPE (accuracy), MPJVE (velocity error) and the acceleration error (jitter),
in mm, mm/frame and mm/frame^2 at 50 fps. All presets are measured in one run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from video3d.data.h36m import TEST_SUBJECTS, load_sequences  # noqa: E402
from video3d.evaluation import Perturbation  # noqa: E402
from video3d.geometry import normalize_screen_coordinates  # noqa: E402
from video3d.lifters import create_lifter  # noqa: E402
from video3d.pipeline import SMOOTHING, _smooth_2d  # noqa: E402

FPS = 50.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/h36m/data_3d_h36m_17j.npz"))
    parser.add_argument("--weights", default=None)
    parser.add_argument("--frames", type=int, default=600, help="first frames of each take")
    parser.add_argument("--cameras", default="0")
    parser.add_argument("--noise-px", type=float, default=4.0)
    parser.add_argument("--drift-px", type=float, default=4.0)
    args = parser.parse_args()
    lifter = create_lifter("gastnet", weights=args.weights, device="cpu")
    perturb = Perturbation(noise_px=args.noise_px, drift_px=args.drift_px, coco_synthesis=True)
    seqs = load_sequences(args.data, TEST_SUBJECTS, cameras=args.cameras.split(","))
    sums = {name: np.zeros(3) for name in SMOOTHING}
    frames = 0
    start = time.perf_counter()
    for key, seq in enumerate(seqs):
        kp = perturb(seq.keypoints_2d[:args.frames], key)
        truth = seq.positions_3d[:args.frames].astype(np.float64)
        lifted = {}
        for name, (f2d, f3d) in SMOOTHING.items():
            if f2d not in lifted:
                x = _smooth_2d(kp, f2d, FPS) if f2d is not None else kp
                lifted[f2d] = lifter.predict(normalize_screen_coordinates(x, seq.res_w, seq.res_h))
            pred = lifted[f2d]
            pred = (f3d(pred, FPS) if f3d is not None else pred).astype(np.float64)
            err = np.linalg.norm(pred - truth, axis=-1).mean()
            vel = np.linalg.norm(np.diff(pred, axis=0) - np.diff(truth, axis=0), axis=-1).mean()
            acc = np.linalg.norm(np.diff(pred, 2, axis=0) - np.diff(truth, 2, axis=0), axis=-1).mean()
            sums[name] += np.array([err, vel, acc]) * len(truth)
        frames += len(truth)
    print(f"{len(seqs)} takes of {', '.join(TEST_SUBJECTS)}, camera(s) {args.cameras}, first {args.frames} frames each: "
          f"{frames} frames; 2D: {perturb}; weights {lifter.weights_path}; {time.perf_counter() - start:.0f} s")
    print(f"{'preset':8s} {'MPJPE mm':>9s} {'MPJVE mm/f':>11s} {'accel err mm/f2':>16s}")
    for name, (e, v, a) in sums.items():
        print(f"{name:8s} {1000 * e / frames:9.1f} {1000 * v / frames:11.2f} {1000 * a / frames:16.2f}")


if __name__ == "__main__":
    main()
