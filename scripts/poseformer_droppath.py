"""Why PoseFormer-81 trained on a GPU was 40 mm worse in eval mode than in train mode (issue 17), shown two ways.

    python scripts/poseformer_droppath.py probe [--weights ../shared/gpu-runs/poseformer_81f.pt] [--windows 1024]
    python scripts/poseformer_droppath.py runs OUT_DIR [--init ../shared/gpu-runs/poseformer_81f.pt] [--seeds 0 1]

``probe``: the weights' MPJPE on fixed, un-augmented windows of a training subject (S1) and a test subject (S9),
in eval mode and with the stochastic depth (DropPath; the model has no other dropout) switched on in different
ways: all blocks as trained, the spatial or the temporal blocks only, the spatial masks drawn per window
instead of per frame, masks without the 1/(1-p) rescale, the rescale without masks. Train-mode figures are the
mean of three draws.

``runs``: short trainings from the same start (by default the GPU-trained 81f weights, which have the dependence;
``--init ''`` for a random start), one change at a time: spatial DropPath 0.1 per frame (the authors' code and
our old default), 0.1 per window, 0; each with two seeds, with the trainer's per-epoch probe of fixed training
windows (eval mode vs training noise on). Augmentation as the GPU run. Writes OUT_DIR/runs.json, prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from video3d.data.h36m import load_sequences  # noqa: E402
from video3d.lifters import load_checkpoint  # noqa: E402
from video3d.training import TrainConfig, train  # noqa: E402
from video3d.windowing import TrainingWindows  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "h36m" / "data_3d_h36m_17j.npz"
WEIGHTS = ROOT.parent / "shared" / "gpu-runs" / "poseformer_81f.pt"


class ProbeDropPath(torch.nn.Module):
    """DropPath with its parts separable: on/off, masks on/off, rescale on/off, draws per row or per window."""

    def __init__(self, p: float, on: bool, masks: bool = True, rescale: bool = True, per_window: int = 0):
        super().__init__()
        self.p, self.on, self.masks, self.rescale, self.per_window = p, on, masks, rescale, per_window

    def forward(self, x: torch.Tensor, groups: int = 1) -> torch.Tensor:
        if not self.on or self.p == 0.0:
            return x
        groups = self.per_window or groups
        if self.masks:
            N = x.shape[0]
            keep = torch.rand(N // groups) >= self.p  # one draw per group of rows: (N/groups,)
            x = x * keep.repeat_interleave(groups).view(N, *([1] * (x.ndim - 1)))  # (N, 1, ...)
        return x / (1.0 - self.p) if self.rescale else x


MODES = {  # name: (spatial settings, temporal settings); None: off
    "eval mode": (None, None),
    "train mode (all blocks, as trained)": ({}, {}),
    "spatial blocks only": ({}, None),
    "temporal blocks only": (None, {}),
    "spatial masks per window, temporal as trained": ("window", {}),
    "masks without the rescale (all blocks)": (dict(rescale=False), dict(rescale=False)),
    "rescale without masks (all blocks)": (dict(masks=False), dict(masks=False)),
}


def set_mode(model, spatial, temporal) -> None:
    frames = model.cfg.frames
    for blocks, setting in ((model.spatial_blocks, spatial), (model.temporal_blocks, temporal)):
        for block in blocks:
            p = block.drop_path.p
            if setting is None:
                block.drop_path = ProbeDropPath(p, on=False)
            elif setting == "window":
                block.drop_path = ProbeDropPath(p, on=True, per_window=frames)
            else:
                block.drop_path = ProbeDropPath(p, on=True, **setting)


@torch.no_grad()
def mpjpe_mm(model, data: TrainingWindows, batch: int = 256) -> float:
    errors = []
    for start in range(0, len(data), batch):
        x, y = data.batch(data.centres(np.arange(start, min(len(data), start + batch))))
        pred = model(x)[:, 0]
        pred[:, 0] = 0.0
        errors.append(torch.linalg.vector_norm(pred - y[:, 0], dim=-1).mean(-1))
    return 1000.0 * float(torch.cat(errors).mean())


def probe(args) -> None:
    lifter = load_checkpoint(args.weights)
    model = lifter.model.eval()
    cfg = model.cfg
    print(f"{args.weights}: PoseFormer {cfg.frames}f, temporal DropPath {cfg.drop_path}, spatial "
          f"{cfg.spatial_drop_path} per {cfg.spatial_drop_path_per}; {args.windows} windows per subject, camera 0..3")
    offsets = lifter.spec.windowing.offsets(model)
    sets = {}
    for subject in args.subjects:
        seqs = load_sequences(args.data, (subject,))
        sets[subject] = TrainingWindows(seqs, offsets).fixed_sample(args.windows, seed=0)
    print(f"{'':50s}" + "".join(f"{s:>9s}" for s in sets))
    for name, (spatial, temporal) in MODES.items():
        set_mode(model, spatial, temporal)
        draws = 1 if name == "eval mode" else args.draws
        row = []
        for data in sets.values():
            values = []
            for draw in range(draws):
                torch.manual_seed(draw)
                values.append(mpjpe_mm(model, data))
            row.append(float(np.mean(values)))
        print(f"{name:50s}" + "".join(f"{v:9.1f}" for v in row), flush=True)


VARIANTS = {
    "spatial DropPath 0.1 per frame": dict(spatial_drop_path=0.1, spatial_drop_path_per="frame"),
    "spatial DropPath 0.1 per window": dict(spatial_drop_path=0.1, spatial_drop_path_per="window"),
    "spatial DropPath 0": dict(spatial_drop_path=0.0),
}


def runs(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "runs.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    for name, overrides in VARIANTS.items():
        for seed in args.seeds:
            key = f"{name}, seed {seed}"
            if key in results:
                continue
            folder = out / f"{'_'.join(f'{k}-{v}' for k, v in overrides.items())}_seed{seed}"
            cfg = TrainConfig.for_lifter(
                str(args.data), "poseformer", frames=args.frames, out=str(folder), epochs=args.epochs,
                batch_size=args.batch_size, lr=args.lr, lr_decay=args.lr_decay, subsample=5,
                samples_per_epoch=args.samples // args.epochs, seed=seed, device="cpu", probe_windows=args.probe,
                val_subsample=args.val_subsample, init_from=str(args.init) if str(args.init) else None,
                flip=True, noise=0.005, joint_dropout=0.02, coco_synthesis=0.5,
                model_overrides={"drop_path": 0.1, **overrides}, checkpoint_minutes=1000)
            summary = train(cfg, log=lambda m: None)
            last = summary["history"][-1]
            results[key] = {"variant": name, "seed": seed, "history": summary["history"]}
            results_path.write_text(json.dumps(results, indent=1))
            print(f"{key}: " + json.dumps({k: round(v, 1) for k, v in last.items() if k.endswith("_mm")}), flush=True)
    print(f"\n{args.frames}f from {args.init or 'random weights'}, {args.samples:,} windows each (batch {args.batch_size}, lr {args.lr} x{args.lr_decay}"
          f" per epoch of {args.samples // args.epochs:,}); last epoch, mm")
    print(f"{'':42s}{'train mode (aug)':>17s}{'probe eval':>11s}{'probe train':>12s}{'gap':>6s}{'S9/S11':>8s}")
    for key, r in results.items():
        last = r["history"][-1]
        gap = last["probe_eval_mode_mm"] - last["probe_train_mode_mm"]
        print(f"{key:42s}{last['train_mpjpe_mm']:17.1f}{last['probe_eval_mode_mm']:11.1f}"
              f"{last['probe_train_mode_mm']:12.1f}{gap:6.1f}{last['val_mpjpe_mm']:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("probe")
    p.add_argument("--weights", type=Path, default=WEIGHTS)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--subjects", nargs="+", default=["S1", "S9"])
    p.add_argument("--windows", type=int, default=1024)
    p.add_argument("--draws", type=int, default=3)
    r = sub.add_parser("runs")
    r.add_argument("out")
    r.add_argument("--data", type=Path, default=DATA)
    r.add_argument("--init", type=str, default=str(WEIGHTS))
    r.add_argument("--frames", type=int, default=81)
    r.add_argument("--samples", type=int, default=2560)
    r.add_argument("--epochs", type=int, default=2)
    r.add_argument("--batch-size", type=int, default=32)
    r.add_argument("--lr", type=float, default=1e-4)
    r.add_argument("--lr-decay", type=float, default=1.0)
    r.add_argument("--probe", type=int, default=256, help="training windows probed per epoch")
    r.add_argument("--val-subsample", type=int, default=500, help="every n-th S9/S11 frame for validation")
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    probe(args) if args.command == "probe" else runs(args)


if __name__ == "__main__":
    main()
