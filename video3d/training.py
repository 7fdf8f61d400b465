"""Training any registered lifter on Human3.6M (``video3d train``).

Seeded and resumable: the order of samples, every augmentation draw and the model's own random layers
(dropout, stochastic depth) are functions of (seed, epoch, batch), so a run stopped at any checkpoint and
resumed trains the same model.
Single process on CPU or one GPU; under ``torchrun`` each process takes every WORLD_SIZE-th
sample of the epoch's order and the model is wrapped in DistributedDataParallel.

The takes' 2D and 3D live as tensors on the training device (``video3d.windowing.TrainingWindows``), windows
are gathered by index arithmetic and augmented by tensor ops, every draw is made for the whole global batch from
a generator seeded by (seed, epoch, step) and each process keeps its own rows (so N processes train on exactly
what one process would), and the loss is read back every ``LOSS_EVERY`` steps only.
"""

from __future__ import annotations

import contextlib
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
from .layouts import synthesize_coco_like_h36m
from .lifters import Lifter, get_spec, new_model, resolve_device
from .lifters.base import save_atomic
from .lifters.layers import DropPath
from .windowing import TrainingWindows, flip

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
    warmup_steps: int = 0  # the rate rises linearly from lr / warmup_steps to lr over the first steps (fine-tuning)
    optimizer: str = "adam"  # adam (amsgrad, as GAST-Net/VideoPose3D) or adamw
    weight_decay: float = 0.0
    bn_momentum: tuple[float, float] = (0.1, 0.001)  # decayed exponentially over the epochs
    subsample: int = 1  # train on every n-th frame as window centre
    samples_per_epoch: int | None = None  # cap an epoch (after subsampling); None: all
    train_subjects: tuple[str, ...] = TRAIN_SUBJECTS
    val_subjects: tuple[str, ...] = TEST_SUBJECTS
    val_subsample: int = 50
    # a fixed sample of un-augmented training windows, measured every epoch in eval mode and with the stochastic
    # layers on: a model that only works with train-mode noise shows here (PoseFormer's per-frame DropPath did)
    probe_windows: int = 2048
    seed: int = 0
    device: str = "auto"
    # augmentation
    flip: bool = True
    noise: float = 0.0  # max std of Gaussian 2D noise, normalised units (0.01 ~ 5 px at 1000 px width)
    joint_dropout: float = 0.0  # probability per (sample, joint) of a span replaced by interpolation
    coco_synthesis: float = 0.0  # probability per sample of pelvis/spine/thorax made as from COCO
    # probability per sample of the window seen through a random virtual camera (``video3d.virtual_camera``) instead
    # of its Human3.6M camera, its 2D scaled to the typical size as ``lift`` does (tensor data loop only)
    virtual_cameras: float = 0.0
    # a detector's 2D errors recorded on rendered clips (``video3d.detector_errors``: scripts/detector_errors.py
    # makes the bank), added to each window with probability detector_errors_p in place of COCO synthesis and
    # noise (tensor data loop only)
    detector_errors: str | None = None
    detector_errors_p: float = 0.5
    checkpoint_minutes: float = 10.0
    max_hours: float | None = None  # stop cleanly (checkpoint saved) after this long
    # a time budget for the whole call: the trainer measures its rate over the first steps, then sets epochs,
    # samples per epoch and lr_decay (to budget_final_lr x lr by the last epoch) so the schedule ends in time
    budget_minutes: float | None = None
    budget_final_lr: float = 0.1
    planned: dict | None = None  # the plan a budget made (kept in the run's state: a resumed run keeps it)
    init_from: str | None = None  # start from these weights (a lifter checkpoint of the same model): fine-tuning
    model_overrides: dict = field(default_factory=dict)  # config fields to change, e.g. {'channels': 16} in tests
    # fp32; tf32 (CUDA matrix products in TF32, as the GPU runs used; the same as fp32 on a CPU); bf16 (autocast:
    # matrix products in bfloat16, the output head and the loss in float32)
    precision: str = "fp32"
    compile: bool = False  # torch.compile the training model

    @classmethod
    def for_lifter(cls, data: str, lifter: str = "gastnet", recipe: str | None = None, **settings) -> "TrainConfig":
        """A recipe of the lifter's spec (default: its first), with ``settings`` on top (None values left out)."""
        spec = get_spec(lifter)
        chosen = {**spec.get_recipe(recipe), **{k: v for k, v in settings.items() if v is not None}}
        if "val_subjects" in chosen and "train_subjects" not in chosen:  # a held-out training subject
            chosen["val_subjects"] = tuple(chosen["val_subjects"])
            chosen["train_subjects"] = tuple(s for s in TRAIN_SUBJECTS if s not in chosen["val_subjects"])
        chosen.setdefault("frames", spec.default_frames)
        return cls(data=data, lifter=lifter, **chosen)

    def validate(self) -> None:
        if self.lifter not in _known_lifters():
            get_spec(self.lifter)  # raises with the list of valid names
        overlap = set(self.train_subjects) & set(TEST_SUBJECTS)
        if overlap:
            raise TrainConfigError(f"training subjects {sorted(overlap)} are Human3.6M test subjects; "
                                   "S9 and S11 are never trained on")
        held_in = set(self.train_subjects) & set(self.val_subjects)
        if held_in:
            raise TrainConfigError(f"validation subjects {sorted(held_in)} are also training subjects")
        if self.batch_size < 1 or self.epochs < 1 or self.subsample < 1:
            raise TrainConfigError("batch size, epochs and subsample must be positive")
        if self.warmup_steps < 0:
            raise TrainConfigError("warm-up steps cannot be negative")
        if self.precision not in PRECISIONS:
            raise TrainConfigError(f"precision is one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if not 0.0 <= self.virtual_cameras <= 1.0:
            raise TrainConfigError(f"virtual cameras is a probability in [0, 1], not {self.virtual_cameras}")
        if not 0.0 <= self.detector_errors_p <= 1.0:
            raise TrainConfigError(f"the detector-error probability is in [0, 1], not {self.detector_errors_p}")
        if self.detector_errors is not None:
            if not Path(self.detector_errors).is_file():
                raise TrainConfigError(f"detector errors: no such file {self.detector_errors}")
        spec = get_spec(self.lifter)
        known = {f.name for f in dataclasses.fields(spec.config_cls)} - {"frames"}
        unknown = sorted(set(self.model_overrides) - known)
        if unknown:
            raise TrainConfigError(f"{self.lifter} has no config field {', '.join(unknown)}; "
                                   f"its fields: {', '.join(sorted(known))}")


PRECISIONS = ("fp32", "tf32", "bf16")
LOSS_EVERY = 25  # the tensor loop reads the running loss back to the host every this many steps


def autocast_for(model: torch.nn.Module, head: str, precision: str, device: torch.device):
    """A context for the training forward pass at ``precision``. bf16: autocast to bfloat16, with the output head
    (``head``, a submodule's name) run in float32 on float32 inputs. tf32: TF32 matrix products on CUDA."""
    if precision == "tf32" and device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if precision != "bf16":
        return contextlib.nullcontext
    module = model.get_submodule(head) if head else None
    if module is not None:
        forward = module.forward

        def float32_forward(*args):
            with torch.autocast(device.type, enabled=False):
                return forward(*(a.float() if torch.is_tensor(a) else a for a in args))

        module.forward = float32_forward  # an instance attribute: the state dict and saving are untouched
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16)


class TrainConfigError(Video3DError, ValueError):
    """A training setting that cannot work (bad input: exit 2)."""

    exit_code = 2


def _known_lifters() -> list[str]:
    from .lifters import list_lifters
    return list_lifters()


# --------------------------------------------------------------------------------------------
# augmentation, as tensor ops on the training device
# --------------------------------------------------------------------------------------------
def step_seed(seed: int, epoch: int, step: int, stream: int) -> int:
    """A 63-bit seed for one step's draws of one kind (``stream``), a function of (seed, epoch, step) alone."""
    state = np.random.SeedSequence([seed, epoch, step, stream]).generate_state(2, np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def step_generator(seed: int, epoch: int, step: int, device: torch.device,
                   generator: torch.Generator | None = None) -> torch.Generator:
    """A torch generator on ``device`` seeded by (seed, epoch, step): a resumed run repeats its draws."""
    generator = generator if generator is not None else torch.Generator(device=device)
    generator.manual_seed(step_seed(seed, epoch, step, 2))
    return generator


def fill_spans(x: torch.Tensor, start: torch.Tensor, end: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """``drop_joint_spans``'s fill for tensors: for each (sample, joint) where ``active``, frames
    ``start <= t < end`` replaced by linear interpolation between the frames either side (the nearest one held
    at the window's edges). x: (B, F, J, 2); start, end, active: (B, J)."""
    B, F, J, C = x.shape
    has_left, has_right = start > 0, end < F
    active = active & (has_left | has_right)  # a span covering the whole window has nothing to interpolate from
    left = torch.clamp(start - 1, min=0)[:, None, :, None].expand(B, 1, J, C)
    right = torch.clamp(end, max=F - 1)[:, None, :, None].expand(B, 1, J, C)
    xl, xr = x.gather(1, left), x.gather(1, right)  # (B, 1, J, C): the frames either side
    t = torch.arange(F, device=x.device)[None, :, None]  # (1, F, 1)
    s, e = start[:, None, :], end[:, None, :]  # (B, 1, J)
    alpha = (t - (s - 1)).to(x.dtype) / (e - s + 1).to(x.dtype)  # (B, F, J)
    alpha = torch.where(has_left[:, None, :], torch.where(has_right[:, None, :], alpha, 0.0), 1.0)
    value = (1 - alpha)[..., None] * xl + alpha[..., None] * xr  # (B, F, J, C)
    inside = (t >= s) & (t < e) & active[:, None, :]  # (B, F, J)
    return torch.where(inside[..., None], value, x)


def augment_tensor(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
                   cfg: TrainConfig, errors=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``augment`` as tensor ops, with draws of the same distributions from ``generator`` (one per sample, or
    per sample and joint): flip, COCO synthesis, span dropout, noise. With ``errors`` (a
    ``detector_errors.DetectorErrors``), a share ``cfg.detector_errors_p`` of the windows gets a detector's
    recorded errors after the flip instead of COCO synthesis and noise (the recording has both)."""
    B, F, J, C = x.shape
    device = x.device

    def uniform(*shape):
        return torch.rand(shape, generator=generator, device=device)

    if cfg.flip:
        m = uniform(B) < 0.5
        x = torch.where(m[:, None, None, None], flip(x), x)
        y = torch.where(m[:, None, None, None], flip(y), y)
    recorded = torch.zeros(B, dtype=torch.bool, device=device)
    if errors is not None:
        x, recorded = errors.apply(x, y, cfg.detector_errors_p, generator)
    if cfg.coco_synthesis > 0:
        m = (uniform(B) < cfg.coco_synthesis) & ~recorded
        x = torch.where(m[:, None, None, None], synthesize_coco_like_h36m(x), x)
    if cfg.joint_dropout > 0:
        active = uniform(B, J) < cfg.joint_dropout
        length = torch.randint(1, F + 1, (B, J), generator=generator, device=device)
        start = torch.randint(0, F, (B, J), generator=generator, device=device)
        x = fill_spans(x, start, torch.clamp(start + length, max=F), active)
    if cfg.noise > 0:
        sigma = uniform(B, 1, 1, 1) * cfg.noise * (~recorded)[:, None, None, None]
        x = x + torch.randn(x.shape, generator=generator, device=device) * sigma
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


def train_step(model, optimizer, x: torch.Tensor, y: torch.Tensor, forward_context=contextlib.nullcontext):
    """One optimiser step on one batch: the forward pass in ``forward_context`` (see ``autocast_for``), the
    MPJPE loss in float32. Returns the loss (a tensor: reading it is the caller's choice of a host sync)."""
    with forward_context():
        pred = model(x)
    loss = mpjpe_loss(pred.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def _any_process(flag: bool, device: torch.device) -> bool:
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    rank = dist.get_rank() if world > 1 else 0
    return rank, world


def _sync(device: torch.device) -> None:
    """Wait for the device's queued work (before reading a clock that times it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def hardware_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


STOCHASTIC_LAYERS = (torch.nn.Dropout, DropPath)


@torch.no_grad()
def validation_error(model, data: TrainingWindows, out_index: int, batch: int = 256,
                     stochastic: bool = False) -> float:
    """MPJPE (mm) on these windows, no test-time augmentation (the per-epoch figure). The model is in eval
    mode; ``stochastic=True`` switches its dropout and stochastic depth on (batch norm stays in eval mode, so
    its statistics are not touched): the figure the model gives with its training noise."""
    model.eval()
    if stochastic:
        for module in model.modules():
            if isinstance(module, STOCHASTIC_LAYERS):
                module.train()
    total, count = 0.0, 0
    for start in range(0, len(data), batch):
        x, y = data.batch(data.centres(np.arange(start, min(len(data), start + batch))))
        pred = model(x)[:, out_index]
        pred[:, 0] = 0.0
        target = y[:, out_index if y.shape[1] > 1 else 0]
        total += torch.linalg.vector_norm(pred - target, dim=-1).mean(-1).sum().item()
        count += len(x)
    model.eval()
    return 1000.0 * total / max(count, 1)


def plan_schedule(seconds_left: float, rate: float, epoch_overhead_s: float, done: int, batch_size: int,
                  available: int, max_epochs: int, final_lr: float = 0.1) -> dict:
    """Epochs, samples per epoch and per-epoch lr decay that fit ``seconds_left`` of training at ``rate``
    samples/s, each epoch also costing ``epoch_overhead_s`` (validation, probe, checkpoints). ``done``: samples
    already trained in the first epoch (they count towards it). At most 20 epochs (a smooth decay needs no
    more), fewer when their overhead would take over a quarter of the time; an epoch never repeats a window
    (``available`` per epoch). The rate falls by ``final_lr`` from the first epoch to the last."""
    epochs = max(1, min(max_epochs, 20))
    while epochs > 1 and epochs * epoch_overhead_s > 0.25 * seconds_left:
        epochs -= 1
    total = done + rate * max(0.0, seconds_left - epochs * epoch_overhead_s)
    if total / epochs > available and epochs < max_epochs:  # more time than 20 epochs of distinct windows
        epochs = min(max_epochs, math.ceil(total / available))
        total = done + rate * max(0.0, seconds_left - epochs * epoch_overhead_s)
    per_epoch = int(total / epochs) // batch_size * batch_size
    per_epoch = max(batch_size, min(per_epoch, available // batch_size * batch_size))
    decay = final_lr ** (1.0 / (epochs - 1)) if epochs > 1 else 1.0
    return {"epochs": epochs, "samples_per_epoch": per_epoch, "lr_decay": round(decay, 6),
            "rate_samples_per_s": round(rate, 1), "epoch_overhead_s": round(epoch_overhead_s, 2),
            "seconds_left": round(seconds_left, 1)}


def apply_plan(cfg: TrainConfig, plan: dict) -> TrainConfig:
    return dataclasses.replace(cfg, epochs=plan["epochs"], samples_per_epoch=plan["samples_per_epoch"],
                               lr_decay=plan["lr_decay"], planned=plan)


def parse_duration(text: str) -> float:
    """'20m', '1.5h', '90s', '45' (minutes) -> minutes."""
    units = {"s": 1 / 60, "m": 1.0, "h": 60.0}
    t = text.strip().lower()
    factor = units.get(t[-1:], None)
    try:
        value = float(t[:-1] if factor is not None else t)
    except ValueError:
        raise TrainConfigError(f"a duration is a number with s, m or h (e.g. 20m), not {text!r}") from None
    if value <= 0:
        raise TrainConfigError(f"a duration must be positive, not {text!r}")
    return value * (factor if factor is not None else 1.0)


def train(cfg: TrainConfig, log: Callable[[str], None] = print, progress=None) -> dict:
    """Run (or resume) a training run in ``cfg.out``. Returns the summary written to summary.json."""
    called = time.time()  # a budget counts from here: loading the data is part of it
    cfg.validate()
    rank, world = _distributed()
    if rank != 0:
        log, progress = (lambda message: None), None  # one process reports
    device = resolve_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    out = Path(cfg.out)
    torch.manual_seed(cfg.seed)
    defaults = {f.name: f.default for f in dataclasses.fields(get_spec(cfg.lifter).config_cls)}
    overrides = {k: float(v) if isinstance(defaults.get(k), float) and type(v) is int else v  # 0 -> 0.0
                 for k, v in cfg.model_overrides.items()}
    try:
        spec, mcfg, model = new_model(cfg.lifter, cfg.frames, **overrides)
    except (TypeError, ValueError) as exc:  # a value the config rejects
        raise TrainConfigError(f"{cfg.lifter} {cfg.frames}f with {cfg.model_overrides}: {exc}") from None
    if cfg.init_from:
        from .lifters import load_checkpoint

        start = load_checkpoint(cfg.init_from, expect=cfg.lifter)
        changed = {f.name: (getattr(start.config, f.name), getattr(mcfg, f.name))
                   for f in dataclasses.fields(mcfg) if getattr(start.config, f.name) != getattr(mcfg, f.name)}
        fixed = sorted(set(changed) - set(spec.regularisation_fields))
        if fixed:
            raise TrainConfigError(f"{cfg.init_from} is a different {cfg.lifter} model ("
                             + ", ".join(f"{k}: {changed[k][0]} there, {changed[k][1]} here" for k in fixed) + ")")
        model.load_state_dict(start.model.state_dict())
        log(f"initialised from {cfg.init_from}"
            + "".join(f"; {k} {a} -> {b}" for k, (a, b) in changed.items()))
    model.to(device)
    offsets = spec.windowing.offsets(model)
    out_index = offsets.centre
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)  # once the settings have proved to build a model

    log(f"loading {cfg.data} ...")
    train_seqs = load_sequences(cfg.data, cfg.train_subjects)
    val_seqs = load_sequences(cfg.data, cfg.val_subjects)
    train_data = TrainingWindows(train_seqs, offsets, cfg.subsample, device)
    typical_size = input_spread(train_seqs)
    val_data = TrainingWindows(val_seqs, offsets, cfg.val_subsample, device)
    probe_data = train_data.fixed_sample(cfg.probe_windows, cfg.seed)
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
        if cfg.budget_minutes and state["config"].get("planned"):  # keep the schedule the budget chose
            cfg = apply_plan(cfg, state["config"]["planned"])
            steps_per_epoch = min(cfg.samples_per_epoch, train_data.shortest_phase()) // cfg.batch_size
        log(f"resumed from {state_path}: epoch {epoch + 1}, step {step}/{steps_per_epoch}")
    train_model = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    forward_context = autocast_for(model, spec.output_head, cfg.precision, device)
    if cfg.compile:
        train_model = torch.compile(train_model)

    errors, errors_meta = None, None
    if cfg.detector_errors is not None:
        from .detector_errors import DetectorErrors, load_bank

        bank = load_bank(cfg.detector_errors)
        if bank.window < len(train_data.offsets):
            raise TrainConfigError(f"{cfg.detector_errors}: windows of {bank.window} frames, the model takes "
                                   f"{len(train_data.offsets)}")
        errors, errors_meta = DetectorErrors(bank, device), {**bank.meta, "windows": str(len(bank.residual))}
        log(f"detector errors: {len(bank.residual):,} recorded windows of {bank.window} frames from "
            f"{cfg.detector_errors} ({bank.meta.get('detector', '?')} on {bank.meta.get('subjects', '?')}), "
            f"p {cfg.detector_errors_p:g}")
    generator = None
    save_seconds = [0.0]  # how long the last save_state took

    def save_state() -> None:
        t = time.time()
        if rank == 0:
            save_atomic({"format": STATE_FORMAT, "config": dataclasses.asdict(cfg), "model": model.state_dict(),
                         "optimizer": optimizer.state_dict(), "epoch": epoch, "step": step,
                         "history": history, "best": best}, state_path)
        save_seconds[0] = time.time() - t

    def training_meta(val_mm: float | None) -> dict:
        return {
            "data": f"Human3.6M ({Path(cfg.data).name}), 2D = 3D projected with the camera (GT 2D), 50 fps",
            "train_subjects": list(cfg.train_subjects), "validation_subjects": list(cfg.val_subjects),
            "recipe": dataclasses.asdict(cfg), "epochs_completed": epoch,
            "samples_seen": sum(h["samples"] for h in history),
            "hardware": hardware_description(device), "val_mpjpe_mm": val_mm,
            "input_spread": typical_size,
            **({"detector_errors": dict(errors_meta)} if errors_meta else {}),
            "torch": str(torch.__version__),
        }

    started = time.time()
    last_save = time.time()
    stop = False
    deadline = called + cfg.budget_minutes * 60 if cfg.budget_minutes else math.inf
    if cfg.max_hours is not None:
        deadline = min(deadline, started + cfg.max_hours * 3600)
    calibrating = bool(cfg.budget_minutes) and cfg.planned is None

    def replan(epoch_start: float, train_s: float, seen: int) -> None:
        """After an epoch: refit the samples of the epochs left to the time left, from this epoch's measured
        rate and overhead (the epochs and the decay stay as planned)."""
        nonlocal cfg, steps_per_epoch
        left = cfg.epochs - epoch
        overhead = time.time() - epoch_start - train_s + save_seconds[0]  # validation, probe, saves; the state next
        margin = max(0.03 * cfg.budget_minutes * 60, overhead)  # slack: one more epoch's overhead
        rate = seen / max(train_s, 1e-6)
        per_epoch = int(rate * max(0.0, deadline - time.time() - margin - left * overhead) / left)
        per_epoch = per_epoch // cfg.batch_size * cfg.batch_size
        per_epoch = max(cfg.batch_size, min(per_epoch, train_data.shortest_phase() // cfg.batch_size * cfg.batch_size))
        if world > 1:
            shared = [per_epoch]
            dist.broadcast_object_list(shared, src=0)
            per_epoch = shared[0]
        plan = {**cfg.planned, "samples_per_epoch": per_epoch, "rate_samples_per_s": round(rate, 1),
                "epoch_overhead_s": round(overhead, 2)}
        cfg = dataclasses.replace(cfg, samples_per_epoch=per_epoch, planned=plan)
        steps_per_epoch = per_epoch // cfg.batch_size
    calib_start = calib_step = None

    def make_plan(rate: float, done: int) -> None:
        """Measure validation and a checkpoint's cost, then fit the schedule into what is left of the budget."""
        nonlocal cfg, steps_per_epoch, val_data, probe_data
        t = time.time()
        sample = val_data.view(val_data.active[:256])
        validation_error(model, sample, out_index)
        eval_rate = len(sample) / max(time.time() - t, 1e-6)
        save_state()  # also the first checkpoint, and its cost
        save_s = save_seconds[0]
        overhead = (len(val_data) + 2 * len(probe_data)) / eval_rate + 3 * save_s
        margin = 0.03 * cfg.budget_minutes * 60 + 2 * save_s
        # a short budget validates on fewer windows rather than give up epochs (and the decay over them)
        allowed = 0.15 * (deadline - time.time() - margin) / max(1, min(cfg.epochs, 20))
        if overhead > allowed and len(val_data) + len(probe_data):
            keep = max(allowed - 3 * save_s, 0.0) / max(overhead - 3 * save_s, 1e-9)
            val_data, probe_data = val_data.thinned(keep), probe_data.thinned(keep)
            overhead = (len(val_data) + 2 * len(probe_data)) / eval_rate + 3 * save_s
        plan = plan_schedule(deadline - time.time() - margin, rate, overhead, done, cfg.batch_size,
                             train_data.shortest_phase(), cfg.epochs, cfg.budget_final_lr)
        plan["validation_windows"], plan["probe_windows"] = len(val_data), len(probe_data)
        if world > 1:  # every process follows rank 0's plan
            shared = [plan]
            dist.broadcast_object_list(shared, src=0)
            plan = shared[0]
        cfg = apply_plan(cfg, plan)
        steps_per_epoch = cfg.samples_per_epoch // cfg.batch_size
        train_model.train()
        log(f"budget {cfg.budget_minutes:g} min: {rate:.0f} samples/s measured; {overhead:.1f} s per epoch for validation "
            f"({len(val_data):,} + {len(probe_data):,} windows) and checkpoints -> {plan['epochs']} epochs x {plan['samples_per_epoch']:,} samples, lr "
            f"{cfg.lr:g} x {plan['lr_decay']:.4f} per epoch (to {cfg.budget_final_lr:g} x by the last)")
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
        centres = train_data.centres(order)  # (steps, batch): the epoch's window centres on the device, once
        train_model.train()
        # a resumed epoch counts the windows trained before the stop (its loss figure covers the rest only)
        resumed_from = step * cfg.batch_size
        epoch_start, loss_sum, loss_n, seen = time.time(), 0.0, 0, resumed_from
        loss_acc = torch.zeros((), device=device)  # summed on the device; read back every LOSS_EVERY steps
        if progress is not None and rank == 0:
            progress.start_epoch(epoch, cfg.epochs, steps_per_epoch, step)
        while step < steps_per_epoch:
            # the whole global batch on every process, each keeping its own rows
            generator = step_generator(cfg.seed, epoch, step, device, generator)
            x_t, y_t = train_data.batch(centres[step])
            if cfg.virtual_cameras > 0:
                x_t, y_t = train_data.virtual(centres[step], x_t, y_t, cfg.virtual_cameras, typical_size, generator)
            x_t, y_t = augment_tensor(x_t, y_t, generator, cfg, errors)
            x_t, y_t = x_t[rank::world], y_t[rank::world]
            n = len(x_t)
            if epoch == 0 and step < cfg.warmup_steps:  # lr / warmup_steps rising to lr at the last warm-up step
                for group in optimizer.param_groups:
                    group["lr"] = lr * (step + 1) / cfg.warmup_steps
            torch.manual_seed(step_seed(cfg.seed, epoch, step, 3))  # dropout and stochastic depth: resumable too
            loss = train_step(train_model, optimizer, x_t, y_t, forward_context)
            step += 1
            loss_acc += loss.detach() * n
            loss_n += n
            seen += n * world
            if step % LOSS_EVERY == 0 or step == steps_per_epoch:
                loss_sum = loss_acc.item()  # the host waits for the device here only
                if progress is not None and rank == 0:
                    progress.update(step, 1000 * loss_sum / loss_n, (seen - resumed_from) / (time.time() - epoch_start))
            if calibrating:
                if step == 3 or calib_start is None:  # the first steps warm up (allocations, kernels): not timed
                    _sync(device)
                    calib_start, calib_step, calib_seen = time.time(), step, seen
                elapsed = time.time() - calib_start
                timed, budget_s = step - calib_step, cfg.budget_minutes * 60
                if world > 1:  # every process must plan at the same step: count steps, not seconds
                    ready = timed >= 10 or step >= steps_per_epoch
                else:
                    ready = (timed >= 10 and elapsed >= 0.02 * budget_s) or (timed >= 1 and elapsed >= 0.1 * budget_s) \
                        or step >= steps_per_epoch
                if ready:
                    _sync(device)
                    elapsed = time.time() - calib_start
                    rate = (seen - calib_seen) / elapsed if step > calib_step else seen / (time.time() - epoch_start)
                    make_plan(rate, seen)
                    calibrating = False
                    order = order[:steps_per_epoch]
                    if progress is not None and rank == 0:
                        progress.start_epoch(epoch, cfg.epochs, steps_per_epoch, step)
            if time.time() - last_save > cfg.checkpoint_minutes * 60:
                save_state()
                last_save = time.time()
            past = time.time() > deadline - 2 * save_seconds[0]  # leave the time to save what was trained
            if world > 1 and deadline < math.inf:  # every process stops at the same step: agree every 10th
                past = step % 10 == 0 and _any_process(past, device)
            if past:
                stop = True
                break
        if stop:
            save_state()
            if cfg.budget_minutes and rank == 0:  # the budget is the run's end: its weights are the result
                meta = {**training_meta(None), "stopped_at_budget": f"epoch {epoch + 1}, step {step}"}
                Lifter(spec, model, mcfg, device=device).save(out / "final.pt", meta)
            limit = f"the budget of {cfg.budget_minutes:g} min" if cfg.budget_minutes else f"{cfg.max_hours} h"
            log(f"stopped at {limit}, epoch {epoch + 1}, step {step}: resume with the same command")
            break
        seconds = time.time() - epoch_start
        val_mm = validation_error(model, val_data, out_index) if rank == 0 else float("nan")
        record = {"epoch": epoch + 1, "lr": lr, "train_mpjpe_mm": 1000 * loss_sum / max(loss_n, 1),
                  "val_mpjpe_mm": val_mm, "samples": seen, "seconds": seconds,
                  "samples_per_s": (seen - resumed_from) / seconds}
        if rank == 0 and len(probe_data):
            # the same un-augmented training windows every epoch: eval mode, and with the training noise on
            record["probe_eval_mode_mm"] = validation_error(model, probe_data, out_index)
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(cfg.seed)  # the same draws every epoch, and the training's stream untouched
                record["probe_train_mode_mm"] = validation_error(model, probe_data, out_index, stochastic=True)
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
        if cfg.planned is not None and epoch < cfg.epochs:
            replan(epoch_start, seconds, seen - resumed_from)
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
