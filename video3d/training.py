"""Training any registered lifter on Human3.6M (``video3d train``).

Seeded and resumable: the order of samples and every augmentation draw are functions of
(seed, epoch, batch), so a run stopped at any checkpoint and resumed gives the same batches.
Single process on CPU or one GPU; under ``torchrun`` each process takes every WORLD_SIZE-th
sample of the epoch's order and the model is wrapped in DistributedDataParallel.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist

from .errors import Video3DError
from .data.h36m import TEST_SUBJECTS, TRAIN_SUBJECTS, load_sequences
from .geometry import pose_spread
from .layouts import H36M17, synthesize_coco_like_h36m
from .lifters import Lifter, get_spec, new_model, resolve_device
from .lifters.base import save_atomic

STATE_FORMAT = "video3d.train-state.v1"


@dataclass
class TrainConfig:
    data: str
    out: str = "runs/gastnet_27f"
    lifter: str = "gastnet"
    frames: int = 27
    epochs: int = 60
    batch_size: int = 128
    lr: float = 1e-3
    lr_decay: float = 0.95  # multiplied in after every epoch
    optimizer: str = "adam"  # adam (amsgrad, as GAST-Net/VideoPose3D) or adamw
    weight_decay: float = 0.0
    bn_momentum: tuple[float, float] = (0.1, 0.001)  # decayed exponentially over the epochs
    subsample: int = 1  # train on every n-th frame as window centre
    samples_per_epoch: int | None = None  # cap an epoch (after subsampling); None: all
    train_subjects: tuple[str, ...] = TRAIN_SUBJECTS
    val_subjects: tuple[str, ...] = TEST_SUBJECTS
    val_subsample: int = 50
    seed: int = 0
    device: str = "auto"
    # augmentation
    flip: bool = True
    noise: float = 0.0  # max std of Gaussian 2D noise, normalised units (0.01 ~ 5 px at 1000 px width)
    joint_dropout: float = 0.0  # probability per (sample, joint) of a span replaced by interpolation
    coco_synthesis: float = 0.0  # probability per sample of pelvis/spine/thorax made as from COCO
    checkpoint_minutes: float = 10.0
    max_hours: float | None = None  # stop cleanly (checkpoint saved) after this long
    init_from: str | None = None  # start from these weights (a lifter checkpoint of the same model): fine-tuning
    model_overrides: dict = field(default_factory=dict)  # config fields to change, e.g. {'channels': 16} in tests

    @classmethod
    def for_lifter(cls, data: str, lifter: str = "gastnet", **settings) -> "TrainConfig":
        """The lifter's paper recipe (its spec), with ``settings`` on top (None values are left out)."""
        spec = get_spec(lifter)
        chosen = {**spec.recipe, **{k: v for k, v in settings.items() if v is not None}}
        chosen.setdefault("frames", spec.default_frames)
        return cls(data=data, lifter=lifter, **chosen)

    def validate(self) -> None:
        if self.lifter not in _known_lifters():
            get_spec(self.lifter)  # raises with the list of valid names
        overlap = set(self.train_subjects) & set(TEST_SUBJECTS)
        if overlap:
            raise ValueError(f"training subjects {sorted(overlap)} are Human3.6M test subjects; "
                             "S9 and S11 are never trained on")
        if self.batch_size < 1 or self.epochs < 1 or self.subsample < 1:
            raise ValueError("batch size, epochs and subsample must be positive")


def _known_lifters() -> list[str]:
    from .lifters import list_lifters
    return list_lifters()


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
class WindowDataset:
    """All takes concatenated; a sample is a window of 2D frames around a centre frame and the
    3D poses of the model's target frames. Windows at the ends of a take repeat its edge frames."""

    def __init__(self, sequences, offsets: np.ndarray, target_offsets: np.ndarray, subsample: int = 1):
        self.x2d = np.concatenate([s.normalized_2d() for s in sequences]).astype(np.float32)
        self.y3d = np.concatenate([s.positions_3d for s in sequences]).astype(np.float32)
        lengths = np.array([len(s.positions_3d) for s in sequences])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self.centres = np.arange(int(lengths.sum()))
        self.first = np.repeat(starts, lengths)
        self.last = self.first + np.repeat(lengths, lengths) - 1
        self.frame_in_take = self.centres - self.first
        self.subsample = subsample
        self.phase(0)
        self.offsets = np.asarray(offsets)
        self.target_offsets = np.asarray(target_offsets)

    def phase(self, epoch: int) -> None:
        """Use every ``subsample``-th frame as a centre, starting at ``epoch % subsample``, so that
        successive epochs cover all frames."""
        self.active = np.nonzero(self.frame_in_take % self.subsample == epoch % self.subsample)[0]

    def shortest_phase(self) -> int:
        return int(np.bincount(self.frame_in_take % self.subsample, minlength=self.subsample).min())

    def __len__(self) -> int:
        return len(self.active)

    def batch(self, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        which = self.active[which]
        c = self.centres[which][:, None]
        lo, hi = self.first[which][:, None], self.last[which][:, None]
        x = self.x2d[np.clip(c + self.offsets[None], lo, hi)]  # (B, F, J, 2)
        y = self.y3d[np.clip(c + self.target_offsets[None], lo, hi)]  # (B, F_out, J, 3)
        return x, y


def window_offsets(model) -> tuple[np.ndarray, np.ndarray, int]:
    """(input offsets, target offsets, index of the centre among the outputs) for a model."""
    kind = getattr(model, "kind", None) or _spec_kind(model)
    if kind == "dense":
        pad = model.receptive_field // 2
        return np.arange(-pad, pad + 1), np.zeros(1, int), 0
    offsets = np.asarray(model.window_offsets)
    if kind == "center":
        return offsets, np.zeros(1, int), 0
    return offsets, offsets, int(model.output_index)


def _spec_kind(model) -> str:
    from .lifters.registry import _REGISTRY
    for spec in _REGISTRY.values():
        if isinstance(model, spec.model_cls):
            return spec.kind
    raise ValueError(f"{type(model).__name__} is not a registered lifter")


# --------------------------------------------------------------------------------------------
# augmentation (numpy, in place on a batch)
# --------------------------------------------------------------------------------------------
def flip_numpy(x: np.ndarray) -> np.ndarray:
    x = x[..., H36M17.flip_index, :].copy()
    x[..., 0] *= -1
    return x


def drop_joint_spans(x: np.ndarray, rng: np.random.Generator, p: float, max_len: int | None = None) -> None:
    """Replace random spans of random joints by what the pipeline does for missing joints: linear
    interpolation in time between the last frame before and the first frame after the gap (hold at
    the window's edges). Works in place on (B, F, J, 2)."""
    B, F, J, _ = x.shape
    b, j = np.nonzero(rng.random((B, J)) < p)
    if not len(b):
        return
    max_len = max_len or F
    length = rng.integers(1, max_len + 1, size=len(b))
    s = rng.integers(0, F, size=len(b))
    e = np.minimum(s + length, F)  # exclusive
    has_left, has_right = s > 0, e < F
    keep = has_left | has_right  # a span covering the whole window has nothing to interpolate from
    b, j, s, e, has_left, has_right = b[keep], j[keep], s[keep], e[keep], has_left[keep], has_right[keep]
    t = np.arange(F)[None]  # (1, F)
    xl = x[b, np.maximum(s - 1, 0), j]  # (K, 2)
    xr = x[b, np.minimum(e, F - 1), j]
    alpha = (t - (s - 1)[:, None]) / (e - s + 1)[:, None]  # (K, F)
    alpha = np.where(has_left[:, None], np.where(has_right[:, None], alpha, 0.0), 1.0)
    value = (1 - alpha)[..., None] * xl[:, None] + alpha[..., None] * xr[:, None]  # (K, F, 2)
    inside = (t >= s[:, None]) & (t < e[:, None])
    bb, tt = np.nonzero(inside)
    x[b[bb], tt, j[bb]] = value[bb, tt]


def augment(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    B = len(x)
    if cfg.flip:
        m = rng.random(B) < 0.5
        x[m], y[m] = flip_numpy(x[m]), flip_numpy(y[m])
    if cfg.coco_synthesis > 0:
        m = rng.random(B) < cfg.coco_synthesis
        x[m] = synthesize_coco_like_h36m(x[m])
    if cfg.joint_dropout > 0:
        drop_joint_spans(x, rng, cfg.joint_dropout)
    if cfg.noise > 0:
        sigma = rng.uniform(0.0, cfg.noise, size=(B, 1, 1, 1)).astype(np.float32)
        x += rng.standard_normal(x.shape).astype(np.float32) * sigma
    return x, y


# --------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------
def input_spread(sequences) -> float:
    """The typical size of the 2D input in these takes: ``pose_spread`` of the normalised 2D, the median over
    the takes of each take's median. Stored in the checkpoint: ``lift`` scales every person to it."""
    return round(float(np.median([np.median(pose_spread(s.normalized_2d())) for s in sequences])), 3)


def load_state(path: Path) -> dict:
    """A run's last.pt, read with ``weights_only=True``: tensors and plain containers only, so a planted file
    cannot run code (the state is saved from plain types, see ``save_state``)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # an UnpicklingError for a file with other globals; many kinds for a non-checkpoint
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise StateError(f"{path} is not a video3d training state that loads safely ({type(exc).__name__}"
                         f"{': ' + first[:200] if first else ''}); move it away or choose another --out") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or not isinstance(state.get("config"), dict):
        raise StateError(f"{path} is not a video3d training state ({STATE_FORMAT}); choose another --out")
    return state


class StateError(Video3DError, ValueError):
    """A run folder's last.pt cannot be resumed from (bad input: exit 2)."""

    exit_code = 2


def mpjpe_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(predicted - target, dim=-1).mean()


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    rank = dist.get_rank() if world > 1 else 0
    return rank, world


def hardware_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


@torch.no_grad()
def validate(model, data: WindowDataset, device: torch.device, out_index: int, batch: int = 256) -> float:
    """MPJPE (mm) on the validation windows, no test-time augmentation (the per-epoch figure)."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(data), batch):
        which = np.arange(start, min(len(data), start + batch))
        x, y = data.batch(which)
        pred = model(torch.from_numpy(x).to(device))[:, out_index]
        pred[:, 0] = 0.0
        target = torch.from_numpy(y[:, out_index if y.shape[1] > 1 else 0]).to(device)
        total += torch.linalg.vector_norm(pred - target, dim=-1).mean(-1).sum().item()
        count += len(which)
    return 1000.0 * total / max(count, 1)


def train(cfg: TrainConfig, log: Callable[[str], None] = print, progress=None) -> dict:
    """Run (or resume) a training run in ``cfg.out``. Returns the summary written to summary.json."""
    cfg.validate()
    rank, world = _distributed()
    if rank != 0:
        log, progress = (lambda message: None), None  # one process reports
    device = resolve_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    out = Path(cfg.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    spec, mcfg, model = new_model(cfg.lifter, cfg.frames, **cfg.model_overrides)
    if cfg.init_from:
        from .lifters import load_checkpoint

        start = load_checkpoint(cfg.init_from, expect=cfg.lifter)
        if start.config != mcfg:
            raise ValueError(f"{cfg.init_from} is a different {cfg.lifter} configuration than --frames {cfg.frames}")
        model.load_state_dict(start.model.state_dict())
        log(f"initialised from {cfg.init_from}")
    model.to(device)
    offsets, target_offsets, out_index = window_offsets(model)

    log(f"loading {cfg.data} ...")
    train_seqs = load_sequences(cfg.data, cfg.train_subjects)
    val_seqs = load_sequences(cfg.data, cfg.val_subjects)
    train_data = WindowDataset(train_seqs, offsets, target_offsets, cfg.subsample)
    typical_size = input_spread(train_seqs)
    val_data = WindowDataset(val_seqs, offsets, target_offsets, cfg.val_subsample)
    del train_seqs, val_seqs
    per_epoch = train_data.shortest_phase()
    if cfg.samples_per_epoch is not None:
        per_epoch = min(cfg.samples_per_epoch, per_epoch)
    steps_per_epoch = per_epoch // cfg.batch_size
    log(f"{spec.title} {cfg.frames}f: {sum(p.numel() for p in model.parameters()):,} parameters; "
        f"{len(train_data):,} training windows ({per_epoch:,} per epoch, {steps_per_epoch} steps), "
        f"{len(val_data):,} validation windows; device {device}, world size {world}")

    params = model.parameters()
    if cfg.optimizer == "adam":
        optimizer = torch.optim.Adam(params, lr=cfg.lr, amsgrad=True, weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "adamw":
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r} (adam, adamw)")

    state_path = out / "last.pt"
    epoch, step, history, best = 0, 0, [], math.inf
    if state_path.is_file():
        state = load_state(state_path)
        if state["config"].get("lifter") != cfg.lifter or state["config"].get("frames") != cfg.frames:
            raise StateError(f"{state_path} is a different run; choose another --out")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, step, history, best = state["epoch"], state["step"], state["history"], state["best"]
        log(f"resumed from {state_path}: epoch {epoch + 1}, step {step}/{steps_per_epoch}")
    train_model = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    def save_state() -> None:
        if rank == 0:
            save_atomic({"format": STATE_FORMAT, "config": dataclasses.asdict(cfg), "model": model.state_dict(),
                         "optimizer": optimizer.state_dict(), "epoch": epoch, "step": step,
                         "history": history, "best": best}, state_path)

    def training_meta(val_mm: float | None) -> dict:
        return {
            "data": f"Human3.6M ({Path(cfg.data).name}), 2D = 3D projected with the camera (GT 2D), 50 fps",
            "train_subjects": list(cfg.train_subjects), "validation_subjects": list(cfg.val_subjects),
            "recipe": dataclasses.asdict(cfg), "epochs_completed": epoch,
            "samples_seen": sum(h["samples"] for h in history),
            "hardware": hardware_description(device), "val_mpjpe_mm": val_mm,
            "input_spread": typical_size,
            "torch": str(torch.__version__),
        }

    started = time.time()
    last_save = time.time()
    stop = False
    while epoch < cfg.epochs and not stop:
        # per-epoch schedules: lr decays by lr_decay, BN momentum exponentially from start to end
        lr = cfg.lr * cfg.lr_decay**epoch
        for group in optimizer.param_groups:
            group["lr"] = lr
        m0, m1 = cfg.bn_momentum
        if hasattr(model, "set_bn_momentum"):
            model.set_bn_momentum(m0 * (m1 / m0) ** (epoch / max(1, cfg.epochs - 1)))
        train_data.phase(epoch)
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(train_data))[:steps_per_epoch * cfg.batch_size]
        order = order.reshape(steps_per_epoch, cfg.batch_size)
        train_model.train()
        epoch_start, loss_sum, loss_n, seen = time.time(), 0.0, 0, 0
        if progress is not None and rank == 0:
            progress.start_epoch(epoch, cfg.epochs, steps_per_epoch, step)
        while step < steps_per_epoch:
            rng = np.random.default_rng([cfg.seed, epoch, step, 1])
            which = order[step][rank::world]
            x, y = augment(*train_data.batch(which), rng, cfg)
            x_t, y_t = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
            pred = train_model(x_t)
            loss = mpjpe_loss(pred, y_t)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            loss_sum += loss.item() * len(which)
            loss_n += len(which)
            seen += len(which) * world
            if progress is not None and rank == 0:
                progress.update(step, 1000 * loss_sum / loss_n, seen / (time.time() - epoch_start))
            if time.time() - last_save > cfg.checkpoint_minutes * 60:
                save_state()
                last_save = time.time()
            if cfg.max_hours is not None and time.time() - started > cfg.max_hours * 3600:
                stop = True
                break
        if stop:
            save_state()
            log(f"stopped after {cfg.max_hours} h at epoch {epoch + 1}, step {step}: resume with the same command")
            break
        val_mm = validate(model, val_data, device, out_index) if rank == 0 else float("nan")
        record = {"epoch": epoch + 1, "lr": lr, "train_mpjpe_mm": 1000 * loss_sum / max(loss_n, 1),
                  "val_mpjpe_mm": val_mm, "samples": seen, "seconds": time.time() - epoch_start,
                  "samples_per_s": seen / (time.time() - epoch_start)}
        history.append(record)
        epoch += 1
        step = 0
        if rank == 0:
            log(json.dumps(record))
            with open(out / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            lifter = Lifter(spec, model, mcfg, device=device)
            lifter.save(out / "final.pt", training_meta(val_mm))
            if val_mm < best:
                best = val_mm
                lifter.save(out / "best.pt", training_meta(val_mm))
            lifter.model.train()
        save_state()
        last_save = time.time()
    summary = {"epochs_completed": epoch, "history": history, "best_val_mpjpe_mm": best,
               "finished": epoch >= cfg.epochs, "rank": rank}
    if rank == 0:
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return summary
