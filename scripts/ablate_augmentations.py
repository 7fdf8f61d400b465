"""Does each training augmentation help? An ablation of GAST-Net 27f (run in the background; hours on a CPU).

    python scripts/ablate_augmentations.py OUT_DIR [--init WEIGHTS] [--samples 16384] [--lr 1e-3] [--data PATH]

Every variant starts from the same point (fresh weights drawn with the same seed, or the weights given by
--init, trained with all augmentations) and trains for the same number of samples with one augmentation
left out; "all, seed 2" repeats the full recipe with another seed, so the table shows how far two runs
differ by chance alone. Each is then evaluated on the same subset of the test subjects (S9, S11, camera 0,
the first 300 frames of each take) under three conditions: the GT 2D, detector-like 2D (noise, drifting
offsets, COCO-synthesised torso joints) and 2D with joints lost and interpolated. Writes
OUT_DIR/ablation.json (a rerun skips the variants already there) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from video3d.evaluation import DETECTOR_LIKE, Perturbation, evaluate  # noqa: E402
from video3d.lifters import load_checkpoint  # noqa: E402
from video3d.training import TrainConfig, train  # noqa: E402

ALL = dict(flip=True, noise=0.005, joint_dropout=0.02, coco_synthesis=0.5)
VARIANTS = {
    "all": {},
    "all, seed 2": dict(seed=2),
    "no flip": dict(flip=False),
    "no noise": dict(noise=0.0),
    "no joint dropout": dict(joint_dropout=0.0),
    "no COCO synthesis": dict(coco_synthesis=0.0),
}
CONDITIONS = {
    "GT 2D": Perturbation(),
    "detector-like 2D": DETECTOR_LIKE,
    "joints lost": Perturbation(dropped_joints=0.1),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--init", type=Path, default=None, help="fine-tune from these weights (default: from scratch)")
    parser.add_argument("--samples", type=int, default=16384)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/h36m/data_3d_h36m_17j.npz"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results_path = args.out / "ablation.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    for name, change in VARIANTS.items():
        if name in results:
            continue
        run_dir = args.out / name.replace(" ", "_")
        settings = {**ALL, "seed": 1, **change}
        cfg = TrainConfig(data=args.data, out=str(run_dir), lifter="gastnet", frames=27, epochs=1, batch_size=128,
                          lr=args.lr, samples_per_epoch=args.samples, subsample=5, val_subsample=200,
                          device="cpu", init_from=str(args.init) if args.init else None, **settings)
        train(cfg, log=lambda m, tag=name: print(f"[{tag}] {m}", flush=True))
        lifter = load_checkpoint(run_dir / "final.pt")
        scores = {}
        for cond, perturb in CONDITIONS.items():
            report = evaluate(lifter, args.data, cameras=["0"], perturb=perturb, max_frames=300)
            scores[cond] = {k: round(v, 2) for k, v in report.average.items()}
            print(f"[{name}] {cond}: {scores[cond]}", flush=True)
        results[name] = {"augmentations": settings, "init": str(args.init) if args.init else None, "scores": scores}
        results_path.write_text(json.dumps(results, indent=2))
    print(f"{'variant':20s}" + "".join(f"{c + ' P1':>24s}" for c in CONDITIONS))
    for name, r in results.items():
        print(f"{name:20s}" + "".join(f"{r['scores'][c]['mpjpe']:24.1f}" for c in CONDITIONS))


if __name__ == "__main__":
    main()
