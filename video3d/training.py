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


def learning_rate(cfg: TrainConfig, epoch: int, step: int | None = None) -> float:
    """The learning rate of a step: ``lr`` decayed by ``lr_decay`` after every epoch, and over the first
    ``warmup_steps`` steps of the first epoch rising linearly from lr / warmup_steps to lr (fine-tuning: Adam's
    first steps at full rate throw a trained model off). ``step`` None: the epoch's rate, without warm-up."""
    lr = cfg.lr * cfg.lr_decay ** epoch
    if step is not None and epoch == 0 and step < cfg.warmup_steps:
        lr *= (step + 1) / cfg.warmup_steps
    return lr


def train(cfg: TrainConfig, log: Callable[[str], None] = print, progress=None) -> dict:
    """Run (or resume) a training run in ``cfg.out``. Returns the summary written to summary.json."""
    return Trainer(cfg, log, progress).run()


class Trainer:
    """One training run: ``setup`` (model, data, optimiser, a resumed state, the detector-error bank), then
    ``run_epoch`` until the epochs or the time are spent, then ``finish``. Its state lives here: the config
    (which a time budget re-plans: ``plan_budget``, ``replan``), the model and optimiser, the epoch and step, the
    history and the best validation error. Every random draw is a function of (seed, epoch, step), so a run
    stopped at any checkpoint and resumed trains the same model."""

    def __init__(self, cfg: TrainConfig, log: Callable[[str], None] = print, progress=None):
        self.called = time.time()  # a budget counts from here: loading the data is part of it
        cfg.validate()
        self.rank, self.world = _distributed()
        if self.rank != 0:
            log, progress = (lambda message: None), None  # one process reports
        self.cfg, self.log, self.progress = cfg, log, progress
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)
        self.out = Path(cfg.out)
        self.state_path = self.out / "last.pt"
        self.epoch, self.step, self.history, self.best = 0, 0, [], math.inf
        self.stopped = False
        self.save_seconds = 0.0  # how long the last save_state took
        self.generator = None
        self.errors, self.errors_meta = None, None
        self._calib = None  # (time, step, windows seen) where a budget's timing of the steps began

    @property
    def steps_per_epoch(self) -> int:
        """An epoch's steps: the windows of the shortest phase, or the config's cap on them (which a budget sets)."""
        per_epoch = self.shortest_phase
        if self.cfg.samples_per_epoch is not None:
            per_epoch = min(self.cfg.samples_per_epoch, per_epoch)
        return per_epoch // self.cfg.batch_size

    # --- setup --------------------------------------------------------------------------------
    def run(self) -> dict:
        self.setup()
        while self.epoch < self.cfg.epochs and not self.stopped:
            self.run_epoch()
        return self.finish()

    def setup(self) -> None:
        self.build_model()
        self.load_data()
        self.optimizer = self.make_optimizer()
        if self.state_path.is_file():
            self.resume()
        model = self.model
        self.train_model = torch.nn.parallel.DistributedDataParallel(model) if self.world > 1 else model
        self.forward_context = autocast_for(model, self.spec.output_head, self.cfg.precision, self.device)
        if self.cfg.compile:
            self.train_model = torch.compile(self.train_model)
        if self.cfg.detector_errors is not None:
            self.load_detector_errors()
        self.deadline = self.called + self.cfg.budget_minutes * 60 if self.cfg.budget_minutes else math.inf
        if self.cfg.max_hours is not None:
            self.deadline = min(self.deadline, time.time() + self.cfg.max_hours * 3600)
        self.calibrating = bool(self.cfg.budget_minutes) and self.cfg.planned is None
        self.last_save = time.time()

    def build_model(self) -> None:
        """The lifter's model with the config's overrides, from ``init_from``'s weights when fine-tuning."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        defaults = {f.name: f.default for f in dataclasses.fields(get_spec(cfg.lifter).config_cls)}
        overrides = {k: float(v) if isinstance(defaults.get(k), float) and type(v) is int else v  # 0 -> 0.0
                     for k, v in cfg.model_overrides.items()}
        try:
            self.spec, self.model_config, self.model = new_model(cfg.lifter, cfg.frames, **overrides)
        except (TypeError, ValueError) as exc:  # a value the config rejects
            raise TrainConfigError(f"{cfg.lifter} {cfg.frames}f with {cfg.model_overrides}: {exc}") from None
        if cfg.init_from:
            self.initialise_from(cfg.init_from)
        self.model.to(self.device)
        self.offsets = self.spec.windowing.offsets(self.model)
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)  # once the settings have proved to build a model

    def initialise_from(self, path: str) -> None:
        from .lifters import load_checkpoint

        start = load_checkpoint(path, expect=self.cfg.lifter)
        mcfg = self.model_config
        changed = {f.name: (getattr(start.config, f.name), getattr(mcfg, f.name))
                   for f in dataclasses.fields(mcfg) if getattr(start.config, f.name) != getattr(mcfg, f.name)}
        fixed = sorted(set(changed) - set(self.spec.regularisation_fields))
        if fixed:
            raise TrainConfigError(f"{path} is a different {self.cfg.lifter} model ("
                                   + ", ".join(f"{k}: {changed[k][0]} there, {changed[k][1]} here" for k in fixed) + ")")
        self.model.load_state_dict(start.model.state_dict())
        self.log(f"initialised from {path}" + "".join(f"; {k} {a} -> {b}" for k, (a, b) in changed.items()))

    def load_data(self) -> None:
        cfg = self.cfg
        self.log(f"loading {cfg.data} ...")
        train_seqs = load_sequences(cfg.data, cfg.train_subjects)
        val_seqs = load_sequences(cfg.data, cfg.val_subjects)
        self.train_data = TrainingWindows(train_seqs, self.offsets, cfg.subsample, self.device)
        self.typical_size = input_spread(train_seqs)
        self.val_data = TrainingWindows(val_seqs, self.offsets, cfg.val_subsample, self.device)
        self.probe_data = self.train_data.fixed_sample(cfg.probe_windows, cfg.seed)
        self.shortest_phase = self.train_data.shortest_phase()  # the most windows an epoch can have
        per_epoch = self.steps_per_epoch * cfg.batch_size
        self.log(f"{self.spec.title} {cfg.frames}f: {sum(p.numel() for p in self.model.parameters()):,} parameters; "
                 f"{len(self.train_data):,} training windows ({per_epoch:,} per epoch, {self.steps_per_epoch} steps), "
                 f"{len(self.val_data):,} validation windows; device {self.device}, world size {self.world}")

    def make_optimizer(self) -> torch.optim.Optimizer:
        cfg, params = self.cfg, self.model.parameters()
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=cfg.lr, amsgrad=True, weight_decay=cfg.weight_decay)
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        raise ValueError(f"unknown optimizer {cfg.optimizer!r} (adam, adamw)")

    def resume(self) -> None:
        """Carry on from the run folder's last.pt (and keep the schedule a budget chose for it)."""
        state = load_state(self.state_path)
        if state["config"].get("lifter") != self.cfg.lifter or state["config"].get("frames") != self.cfg.frames:
            raise StateError(f"{self.state_path} is a different run; choose another --out")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.step, self.history, self.best = state["epoch"], state["step"], state["history"], state["best"]
        if self.cfg.budget_minutes and state["config"].get("planned"):
            self.cfg = apply_plan(self.cfg, state["config"]["planned"])
        self.log(f"resumed from {self.state_path}: epoch {self.epoch + 1}, step {self.step}/{self.steps_per_epoch}")

    def load_detector_errors(self) -> None:
        from .detector_errors import DetectorErrors, load_bank

        cfg = self.cfg
        bank = load_bank(cfg.detector_errors)
        if bank.window < len(self.train_data.input_offsets):
            raise TrainConfigError(f"{cfg.detector_errors}: windows of {bank.window} frames, the model takes "
                                   f"{len(self.train_data.input_offsets)}")
        self.errors = DetectorErrors(bank, self.device)
        self.errors_meta = {**bank.meta, "windows": str(len(bank.residual))}
        self.log(f"detector errors: {len(bank.residual):,} recorded windows of {bank.window} frames from "
                 f"{cfg.detector_errors} ({bank.meta.get('detector', '?')} on {bank.meta.get('subjects', '?')}), "
                 f"p {cfg.detector_errors_p:g}")

    # --- an epoch -----------------------------------------------------------------------------
    def run_epoch(self) -> None:
        """Train the rest of this epoch (all of it, unless resumed), then validate and save; or stop at the
        deadline with the state saved."""
        cfg = self.cfg
        m0, m1 = cfg.bn_momentum  # batch norm momentum, exponentially from start to end
        if hasattr(self.model, "set_bn_momentum"):
            self.model.set_bn_momentum(m0 * (m1 / m0) ** (self.epoch / max(1, cfg.epochs - 1)))
        self.train_data.phase(self.epoch)
        order = np.random.default_rng([cfg.seed, self.epoch]).permutation(len(self.train_data))
        order = order[:self.steps_per_epoch * cfg.batch_size].reshape(self.steps_per_epoch, cfg.batch_size)
        centres = self.train_data.centres(order)  # (steps, batch): the epoch's window centres on the device, once
        self.train_model.train()
        # a resumed epoch counts the windows trained before the stop (its loss figure covers the rest only)
        resumed_from = self.step * cfg.batch_size
        epoch_start, loss_n, seen = time.time(), 0, resumed_from
        loss_sum, loss_acc = 0.0, torch.zeros((), device=self.device)  # summed on the device, read every LOSS_EVERY
        self._start_progress()
        while self.step < self.steps_per_epoch:
            n = self.train_step(centres[self.step], loss_acc)
            loss_n += n
            seen += n * self.world
            if self.step % LOSS_EVERY == 0 or self.step == self.steps_per_epoch:
                loss_sum = loss_acc.item()  # the host waits for the device here only
                if self.progress is not None:
                    self.progress.update(self.step, 1000 * loss_sum / loss_n,
                                         (seen - resumed_from) / (time.time() - epoch_start))
            if self.calibrating:
                self.calibrate(seen, epoch_start)
            if time.time() - self.last_save > cfg.checkpoint_minutes * 60:
                self.save_state()
            if self.past_deadline():
                self.stop_at_deadline()
                return
        seconds = time.time() - epoch_start
        self.end_epoch(1000 * loss_sum / max(loss_n, 1), seen, seconds, resumed_from)
        if self.cfg.planned is not None and self.epoch < self.cfg.epochs:
            self.replan(epoch_start, seconds, seen - resumed_from)
        self.save_state()

    def train_step(self, centres: torch.Tensor, loss_acc: torch.Tensor) -> int:
        """One optimiser step on the windows around ``centres`` (the whole global batch: every process draws
        the augmentation for all of it and keeps its own rows). Returns this process's batch size."""
        cfg, epoch, step = self.cfg, self.epoch, self.step
        self.generator = step_generator(cfg.seed, epoch, step, self.device, self.generator)
        x, y = self.train_data.batch(centres)
        if cfg.virtual_cameras > 0:
            x, y = self.train_data.virtual(centres, x, y, cfg.virtual_cameras, self.typical_size, self.generator)
        x, y = augment_tensor(x, y, self.generator, cfg, self.errors)
        x, y = x[self.rank::self.world], y[self.rank::self.world]
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(cfg, epoch, step)
        torch.manual_seed(step_seed(cfg.seed, epoch, step, 3))  # dropout and stochastic depth: resumable too
        loss = train_step(self.train_model, self.optimizer, x, y, self.forward_context)
        loss_acc += loss.detach() * len(x)
        self.step += 1
        return len(x)

    def _start_progress(self) -> None:
        if self.progress is not None:
            self.progress.start_epoch(self.epoch, self.cfg.epochs, self.steps_per_epoch, self.step)

    def end_epoch(self, train_mm: float, seen: int, seconds: float, resumed_from: int) -> None:
        """Validate, log the epoch and save its weights (final.pt, and best.pt when validation improved)."""
        val_mm = validation_error(self.model, self.val_data, self.offsets.centre) if self.rank == 0 else float("nan")
        record = {"epoch": self.epoch + 1, "lr": learning_rate(self.cfg, self.epoch), "train_mpjpe_mm": train_mm,
                  "val_mpjpe_mm": val_mm, "samples": seen, "seconds": seconds,
                  "samples_per_s": (seen - resumed_from) / seconds}
        if self.rank == 0 and len(self.probe_data):
            record.update(self.probe())
        self.history.append(record)
        self.epoch += 1
        self.step = 0
        if self.rank == 0:
            self.log(json.dumps(record))
            with open(self.out / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            self.save_weights("final.pt", self.training_meta(val_mm))
            if val_mm < self.best:
                self.best = val_mm
                self.save_weights("best.pt", self.training_meta(val_mm))

    def probe(self) -> dict:
        """The same un-augmented training windows every epoch: in eval mode, and with the training noise on."""
        centre = self.offsets.centre
        out = {"probe_eval_mode_mm": validation_error(self.model, self.probe_data, centre)}
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.cfg.seed)  # the same draws every epoch, and the training's stream untouched
            out["probe_train_mode_mm"] = validation_error(self.model, self.probe_data, centre, stochastic=True)
        return out

    # --- time -----------------------------------------------------------------------------------
    def past_deadline(self) -> bool:
        past = time.time() > self.deadline - 2 * self.save_seconds  # leave the time to save what was trained
        if self.world > 1 and self.deadline < math.inf:  # every process stops at the same step: agree every 10th
            past = self.step % 10 == 0 and _any_process(past, self.device)
        return past

    def stop_at_deadline(self) -> None:
        cfg = self.cfg
        self.stopped = True
        self.save_state()
        if cfg.budget_minutes and self.rank == 0:  # the budget is the run's end: its weights are the result
            meta = {**self.training_meta(None), "stopped_at_budget": f"epoch {self.epoch + 1}, step {self.step}"}
            self.save_weights("final.pt", meta)
        limit = f"the budget of {cfg.budget_minutes:g} min" if cfg.budget_minutes else f"{cfg.max_hours} h"
        self.log(f"stopped at {limit}, epoch {self.epoch + 1}, step {self.step}: resume with the same command")

    def calibrate(self, seen: int, epoch_start: float) -> None:
        """Time the first steps of a budgeted run (after three untimed ones), then plan the schedule."""
        if self.step == 3 or self._calib is None:  # the first steps warm up: not timed
            _sync(self.device)
            self._calib = (time.time(), self.step, seen)
        calib_start, calib_step, calib_seen = self._calib
        elapsed = time.time() - calib_start
        timed, budget_s = self.step - calib_step, self.cfg.budget_minutes * 60
        if self.world > 1:  # every process must plan at the same step: count steps, not seconds
            ready = timed >= 10 or self.step >= self.steps_per_epoch
        else:
            ready = (timed >= 10 and elapsed >= 0.02 * budget_s) or (timed >= 1 and elapsed >= 0.1 * budget_s) \
                or self.step >= self.steps_per_epoch
        if not ready:
            return
        _sync(self.device)
        elapsed = time.time() - calib_start
        rate = (seen - calib_seen) / elapsed if self.step > calib_step else seen / (time.time() - epoch_start)
        self.plan_budget(rate, seen)
        self.calibrating = False
        self._start_progress()

    def plan_budget(self, rate: float, done: int) -> None:
        """Measure validation and a checkpoint's cost, then fit the schedule into what is left of the budget."""
        cfg = self.cfg
        t = time.time()
        sample = self.val_data.view(self.val_data.active[:256])
        validation_error(self.model, sample, self.offsets.centre)
        eval_rate = len(sample) / max(time.time() - t, 1e-6)
        self.save_state()  # also the first checkpoint, and its cost
        save_s = self.save_seconds
        overhead = (len(self.val_data) + 2 * len(self.probe_data)) / eval_rate + 3 * save_s
        margin = 0.03 * cfg.budget_minutes * 60 + 2 * save_s
        # a short budget validates on fewer windows rather than give up epochs (and the decay over them)
        allowed = 0.15 * (self.deadline - time.time() - margin) / max(1, min(cfg.epochs, 20))
        if overhead > allowed and len(self.val_data) + len(self.probe_data):
            keep = max(allowed - 3 * save_s, 0.0) / max(overhead - 3 * save_s, 1e-9)
            self.val_data, self.probe_data = self.val_data.thinned(keep), self.probe_data.thinned(keep)
            overhead = (len(self.val_data) + 2 * len(self.probe_data)) / eval_rate + 3 * save_s
        plan = plan_schedule(self.deadline - time.time() - margin, rate, overhead, done, cfg.batch_size,
                             self.shortest_phase, cfg.epochs, cfg.budget_final_lr)
        plan["validation_windows"], plan["probe_windows"] = len(self.val_data), len(self.probe_data)
        plan = self._shared(plan)  # every process follows rank 0's plan
        self.cfg = apply_plan(cfg, plan)
        self.train_model.train()
        self.log(f"budget {cfg.budget_minutes:g} min: {rate:.0f} samples/s measured; {overhead:.1f} s per epoch for "
                 f"validation ({len(self.val_data):,} + {len(self.probe_data):,} windows) and checkpoints -> "
                 f"{plan['epochs']} epochs x {plan['samples_per_epoch']:,} samples, lr {cfg.lr:g} x "
                 f"{plan['lr_decay']:.4f} per epoch (to {cfg.budget_final_lr:g} x by the last)")

    def replan(self, epoch_start: float, train_s: float, seen: int) -> None:
        """After an epoch: refit the samples of the epochs left to the time left, from this epoch's measured
        rate and overhead (the epochs and the decay stay as planned)."""
        cfg = self.cfg
        left = cfg.epochs - self.epoch
        overhead = time.time() - epoch_start - train_s + self.save_seconds  # validation, probe, saves; the state next
        margin = max(0.03 * cfg.budget_minutes * 60, overhead)  # slack: one more epoch's overhead
        rate = seen / max(train_s, 1e-6)
        per_epoch = int(rate * max(0.0, self.deadline - time.time() - margin - left * overhead) / left)
        per_epoch = per_epoch // cfg.batch_size * cfg.batch_size
        most = self.shortest_phase // cfg.batch_size * cfg.batch_size
        per_epoch = self._shared(max(cfg.batch_size, min(per_epoch, most)))
        plan = {**cfg.planned, "samples_per_epoch": per_epoch, "rate_samples_per_s": round(rate, 1),
                "epoch_overhead_s": round(overhead, 2)}
        self.cfg = dataclasses.replace(cfg, samples_per_epoch=per_epoch, planned=plan)

    def _shared(self, value):
        """Rank 0's ``value`` on every process."""
        if self.world > 1:
            shared = [value]
            dist.broadcast_object_list(shared, src=0)
            value = shared[0]
        return value

    # --- saving ---------------------------------------------------------------------------------
    def save_state(self) -> None:
        """last.pt: everything a resumed run needs, plain types and tensors only (``load_state``)."""
        t = time.time()
        if self.rank == 0:
            save_atomic({"format": STATE_FORMAT, "config": dataclasses.asdict(self.cfg),
                         "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                         "epoch": self.epoch, "step": self.step, "history": self.history, "best": self.best},
                        self.state_path)
        self.save_seconds = time.time() - t
        self.last_save = time.time()

    def save_weights(self, name: str, meta: dict) -> None:
        """A lifter checkpoint of the model as it is now (it rebuilds its own model), with how it was trained."""
        Lifter(self.spec, self.model, self.model_config, device=self.device).save(self.out / name, meta)
        self.model.train()  # Lifter puts the model in eval mode

    def training_meta(self, val_mm: float | None) -> dict:
        cfg = self.cfg
        return {
            "data": f"Human3.6M ({Path(cfg.data).name}), 2D = 3D projected with the camera (GT 2D), 50 fps",
            "train_subjects": list(cfg.train_subjects), "validation_subjects": list(cfg.val_subjects),
            "recipe": dataclasses.asdict(cfg), "epochs_completed": self.epoch,
            "samples_seen": sum(h["samples"] for h in self.history),
            "hardware": hardware_description(self.device), "val_mpjpe_mm": val_mm,
            "input_spread": self.typical_size,
            **({"detector_errors": dict(self.errors_meta)} if self.errors_meta else {}),
            "torch": str(torch.__version__),
        }

    def finish(self) -> dict:
        summary = {"epochs_completed": self.epoch, "history": self.history, "best_val_mpjpe_mm": self.best,
                   "finished": self.epoch >= self.cfg.epochs, "rank": self.rank}
        if self.rank == 0:
            (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
        if self.world > 1:
            dist.barrier()
            dist.destroy_process_group()
        return summary
