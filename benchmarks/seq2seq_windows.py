"""Sequence-to-sequence lifters (STCFormer): one window per frame, or blended windows every ``hop`` samples?

    python benchmarks/seq2seq_windows.py [--weights weights/stcformer_27f.pt] [--frames 300] [--cameras 0]
                                         [--hops 3,9,13,27] [--conditions gt,detector]

A sequence-to-sequence lifter predicts every frame of its window. The papers' test protocol still lifts each
frame from its own window and scores only the centre output ("centre": one window per frame); video3d's
"blend" places windows ``hop`` sampled frames apart and averages, for each frame, the outputs of every
window holding it, weighted towards each window's centre (``Lifter.predict``). This lifts the same frames
(the first ``--frames`` of every S9/S11 take in the chosen cameras) both ways, under GT 2D and under the
detector-like 2D of ``video3d evaluate`` (4 px noise, 4 px drift, COCO-made pelvis/spine/thorax), and prints
P1 / P2 / MPJVE (mm; the protocol's mean over the 15 action groups) and frames/s of the lifting alone (flip
test-time augmentation on, as ``video3d lift``), all in one run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from video3d.evaluation import DETECTOR_LIKE, Perturbation, evaluate_sequences, protocol_sequences  # noqa: E402
from video3d.lifters import create_lifter  # noqa: E402

CONDITIONS = {"gt": Perturbation(), "detector": DETECTOR_LIKE}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/h36m/data_3d_h36m_17j.npz"))
    parser.add_argument("--lifter", default="stcformer")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--frames", type=int, default=300, help="first frames of each test take")
    parser.add_argument("--cameras", default="0")
    parser.add_argument("--actions", default=None, help="comma-separated action prefixes (default all)")
    parser.add_argument("--hops", default="3,9,13,27")
    parser.add_argument("--conditions", default="gt,detector")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lifter = create_lifter(args.lifter, weights=args.weights, device="cpu")
    modes = [("centre", None)] + [("blend", int(h)) for h in args.hops.split(",")]
    print(f"{lifter.name} ({lifter.weights_path}), first {args.frames} frames of each S9/S11 take, cameras "
          f"{args.cameras}, flip TTA, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'condition':10s} {'windows':8s} {'hop':>4s} {'frames':>7s} {'P1':>6s} {'P2':>6s} {'MPJVE':>6s} "
          f"{'frames/s':>9s}")
    for condition in args.conditions.split(","):
        perturb = CONDITIONS[condition]
        sequences = protocol_sequences(args.data, cameras=args.cameras.split(","),
                                       actions=args.actions.split(",") if args.actions else None,
                                       perturb=perturb, max_frames=args.frames)
        for windows, hop in modes:
            start = time.perf_counter()
            report = evaluate_sequences(lifter, sequences, perturb=perturb, max_frames=args.frames, windows=windows,
                                        hop=hop)
            rate = report.frames / (time.perf_counter() - start)
            avg = report.average
            print(f"{condition:10s} {windows:8s} {hop or '-':>4} {report.frames:7d} {avg['mpjpe']:6.1f} "
                  f"{avg['p_mpjpe']:6.1f} {avg['mpjve']:6.2f} {rate:9.1f}", flush=True)


if __name__ == "__main__":
    main()
