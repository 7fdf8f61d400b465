"""How fast does each lifter turn 2D into 3D on this machine? Frames per second of ``Lifter.predict``.

    python benchmarks/lifter_speed.py [--frames 3000] [--threads N] [--device cpu]

Every registered lifter at each of its paper window lengths, with flip test-time augmentation on (as
``video3d lift`` runs it) and off, on the same random 2D sequence, all measured in one run so that the ratios
compare (the machines are noisy: read the ratios, not the absolute figures). Speed does not depend on the
values of the weights, so randomly initialised models are timed; parameter counts are printed beside them.
Sequence-to-sequence lifters (STCFormer) are timed both ways ``Lifter.predict`` places their windows: "blend"
(the default) and "centre" (one window per frame, the papers' protocol; on ``--centre-frames`` frames only,
as it is slow).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from video3d.lifters import create_lifter, get_spec, list_lifters  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=3000, help="length of the test sequence")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lifters", default=None, help="comma-separated names (default: all)")
    parser.add_argument("--max-window", type=int, default=81, help="skip windows longer than this")
    parser.add_argument("--centre-frames", type=int, default=300, help="frames for the slow 'centre' mode")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, (args.frames, 17, 2)).astype(np.float32)
    print(f"{args.frames} frames, device {args.device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'lifter':12s} {'window':>6s} {'windows':>8s} {'params':>8s} {'fps (flip)':>11s} {'fps (no flip)':>14s}")
    names = args.lifters.split(",") if args.lifters else list_lifters()
    for name in names:
        spec = get_spec(name)
        modes = ["blend", "centre"] if spec.windowing.seq2seq else ["-"]
        for frames in spec.frames:
            if frames > args.max_window:
                continue
            lifter = create_lifter(name, frames=frames, pretrained=False, device=args.device)
            lifter.predict(x[:300])  # warm-up
            for mode in modes:
                n = args.centre_frames if mode == "centre" else args.frames
                rates = []
                for flip in (True, False):
                    start = time.perf_counter()
                    y = lifter.predict(x[:n], flip=flip, windows="centre" if mode == "centre" else "blend")
                    rates.append(n / (time.perf_counter() - start))
                    assert y.shape == (n, 17, 3) and np.isfinite(y).all()
                print(f"{name:12s} {frames:6d} {mode:>8s} {lifter.num_parameters / 1e6:7.2f}M {rates[0]:11.0f} "
                      f"{rates[1]:14.0f}", flush=True)


if __name__ == "__main__":
    main()
