"""How fast does the trainer train each lifter, and how far is it from the model alone? Windows per second.

    python benchmarks/train_speed.py [--steps 12] [--batch 128] [--precisions fp32,bf16] [--device cpu]
                                     [--lifters gastnet:27,poseformer:27,stcformer:27] [--data PATH]

For each lifter and precision, in one run (read the ratios: the machines are noisy):
- "model alone": random inputs of the training shape, forward + MPJPE loss + backward + optimiser step, nothing
  else: the ceiling the trainer could reach;
- "trainer": ``video3d.training.train`` on Human3.6M (the ``--data`` file, GT 2D, the project's augmentations:
  flip, noise, span dropout, COCO synthesis) for the same number of steps, data and augmentation on the device,
  the loss read every 25 steps; its own samples/s (validation not counted).
The model alone is timed after two untimed steps (allocations, kernel selection); the trainer's figure is its own
and includes its first steps (a small handicap over 12 steps).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from video3d.lifters import get_spec, new_model, resolve_device  # noqa: E402
from video3d.training import TrainConfig, autocast_for, train, train_step  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "h36m" / "data_3d_h36m_17j.npz"


def model_alone(name: str, frames: int, batch: int, steps: int, precision: str, device: torch.device) -> float:
    spec, _, model = new_model(name, frames)
    model.to(device).train()
    offsets, targets, _ = spec.windowing.offsets(model)
    context = autocast_for(model, spec.output_head, precision, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, len(offsets), 17, 2, device=device) * 0.2
    y = torch.randn(batch, len(targets), 17, 3, device=device) * 0.2
    warm = 2
    for step in range(warm + steps):
        if step == warm:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        train_step(model, optimizer, x, y, context)  # the trainer's own step
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def trainer(name: str, frames: int, batch: int, steps: int, precision: str, device: str, data: Path) -> float:
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig.for_lifter(
            str(data), name, frames=frames, out=out, epochs=1, batch_size=batch, samples_per_epoch=batch * steps,
            subsample=5, device=device, val_subsample=5000, probe_windows=0, flip=True, noise=0.005,
            joint_dropout=0.02, coco_synthesis=0.5, precision=precision, checkpoint_minutes=1000)
        record = train(cfg, log=lambda m: None)["history"][0]
    return record["samples_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lifters", default="gastnet:27,poseformer:27,stcformer:27")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"{args.steps} timed steps; windows/s")
    print(f"{'lifter':16s}{'precision':>10s}{'model alone':>13s}{'trainer':>10s}{'/alone':>8s}")
    for item in args.lifters.split(","):
        name, frames = item.split(":")
        get_spec(name)
        for precision in args.precisions.split(","):
            alone = model_alone(name, int(frames), args.batch, args.steps, precision, device)
            row = f"{name + ' ' + frames + 'f':16s}{precision:>10s}{alone:13.0f}"
            rate = trainer(name, int(frames), args.batch, args.steps, precision, args.device, args.data)
            row += f"{rate:10.0f}{rate / alone:8.2f}"
            print(row, flush=True)


if __name__ == "__main__":
    main()
