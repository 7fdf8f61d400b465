"""The lifter runtime shared by every model: checkpoints that rebuild their own model, windowed
inference over whole sequences (edge padding, batching, flip test-time augmentation) and frame
alignment: the 3D pose returned for frame i always comes from the window centred on frame i.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DeviceError, Video3DError
from ..io import AtomicPath
from ..layouts import H36M17
from ..windowing import flip as flip_poses
from .registry import LifterSpec, get_spec

CHECKPOINT_FORMAT = "video3d.lifter.v1"
INPUT_NORMALIZATION = "screen: x' = x / w * 2 - 1, y' = y / w * 2 - h / w (w, h: frame size in pixels)"
OUTPUT_CONVENTION = "metres, camera axes (x right, y down, z away from the camera), pelvis at the origin"
# The typical size of the 2D input a lifter saw in training (video3d.geometry.pose_spread of the normalised 2D:
# the median over the takes of each take's median), for checkpoints that do not carry their own: Human3.6M GT 2D
# of S1, S5, S6, S7 and S8 in the four cameras (video3d.training.input_spread; tests/test_training.py checks it).
H36M_INPUT_SPREAD = 0.200
# How a sequence-to-sequence lifter's windows are placed (Lifter.predict): one per frame, or blended.
WINDOW_MODES = ("blend", "centre")


class CheckpointError(Video3DError, ValueError):
    """A weights file is missing, is not a video3d lifter checkpoint, or is damaged (bad input: exit 2)."""

    exit_code = 2


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda was asked for but PyTorch sees no CUDA GPU (use --device cpu or auto)")
    return torch.device(device)


def build_config(spec: LifterSpec, config: dict[str, Any]):
    """Rebuild a config dataclass from a checkpoint's dict (lists back to tuples)."""
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    config = {spec.renamed_config_fields.get(k, k): v for k, v in config.items()}
    if spec.upgrade_config is not None:
        config = spec.upgrade_config(config)
    unknown = set(config) - fields
    if unknown:
        raise CheckpointError(f"checkpoint config has fields {sorted(unknown)} that {spec.name} does not know")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    return spec.config_cls(**values)


class Lifter:
    """A 2D-to-3D lifter ready for inference: model + config + the metadata of its weights."""

    def __init__(self, spec: LifterSpec, model: torch.nn.Module, config, meta: dict[str, Any] | None = None,
                 device: torch.device | str = "cpu", weights_path: Path | None = None):
        self.spec = spec
        self.config = config
        self.meta = dict(meta or {})
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.weights_path = weights_path

    # --- identity ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def receptive_field(self) -> int:
        return self.model.receptive_field

    @property
    def frames(self) -> int:
        """The window length the lifter is named by (``--frames``; STCFormer's 27 sampled frames span a
        receptive field of 79 video frames)."""
        return int(getattr(self.config, "frames", None) or self.receptive_field)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def input_spread(self) -> float:
        """The typical size of the 2D the model was trained on (see H36M_INPUT_SPREAD)."""
        saved = (self.meta.get("training") or {}).get("input_spread")
        return float(saved) if saved else H36M_INPUT_SPREAD

    # --- inference --------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, keypoints: np.ndarray, flip: bool = True, batch_frames: int = 512, windows: str = "blend",
                hop: int | None = None) -> np.ndarray:
        """Normalised H36M-17 2D keypoints (T, 17, 2) -> root-relative 3D (T, 17, 3), one per input frame.

        Edges are padded by repeating the first and last frame, so every frame gets a pose; with
        ``flip`` the horizontally mirrored input is lifted too and its mirrored-back output averaged in.
        NaNs are not allowed here: fill missing joints first (see ``video3d.tracks.fill_missing``).
        ``batch_frames`` bounds the input frames in one forward pass (views x windows x frames per window),
        so memory does not grow with length.

        ``windows`` matters for sequence-to-sequence lifters only (STCFormer), whose every window predicts all
        of its frames: "centre" lifts each frame from its own window and keeps that window's centre output
        (the papers' test protocol; one window per frame); "blend" places windows ``hop`` sampled frames apart
        (default ``default_hop``) and averages, for each frame, the outputs of every window that holds it,
        weighted towards each window's centre (video3d's own; about ``hop`` times fewer windows).
        """
        if windows not in WINDOW_MODES:
            raise ValueError(f"unknown windows mode {windows!r}; choose from {', '.join(WINDOW_MODES)}")
        x = np.asarray(keypoints, dtype=np.float32)
        if x.ndim != 3 or x.shape[1:] != (H36M17.num_joints, 2):
            raise ValueError(f"expected normalised H36M-17 keypoints (T, 17, 2), got {x.shape}")
        if len(x) == 0:
            return np.zeros((0, H36M17.num_joints, 3), np.float32)
        if not np.isfinite(x).all():
            raise ValueError("keypoints contain NaN or inf; fill missing joints before lifting")
        self.model.eval()
        inputs = torch.from_numpy(x).to(self.device)[None]  # (1, T, J, 2)
        if flip:
            inputs = torch.cat([inputs, flip_poses(inputs)], dim=0)  # (2, T, J, 2)
        out = self.spec.windowing.lift(self.model, inputs, batch_frames, windows, hop)  # (V, T, J, 3)
        if flip:
            out = (out[0] + flip_poses(out[1:2])[0]) / 2.0
        else:
            out = out[0]
        out[:, 0] = 0.0  # pelvis at the origin, exactly
        return out.float().cpu().numpy()

    @property
    def default_hop(self) -> int | None:
        """Sampled frames between the windows of ``predict(windows="blend")`` (sequence-to-sequence lifters)."""
        return self.spec.windowing.default_hop(self.model)

    # --- persistence ------------------------------------------------------------------------
    def checkpoint(self, training: dict[str, Any] | None = None) -> dict[str, Any]:
        meta = dict(self.meta)
        if training is not None:
            meta["training"] = training
        return {
            "format": CHECKPOINT_FORMAT,
            "lifter": self.spec.name,
            "config": dataclasses.asdict(self.config),
            "receptive_field": self.receptive_field,
            "kind": self.spec.windowing.name,
            "layout": H36M17.name,
            "input_normalization": INPUT_NORMALIZATION,
            "output": OUTPUT_CONVENTION,
            "license": "AGPL-3.0-or-later (video3d); architecture: " + self.spec.code_license,
            "training": meta.get("training", {}),
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
        }

    def save(self, path: str | Path, training: dict[str, Any] | None = None) -> Path:
        return save_atomic(self.checkpoint(training), path)


def save_atomic(obj: Any, path: str | Path) -> Path:
    """torch.save to a temporary file beside ``path``, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with AtomicPath(path, force=True) as out:  # the file gets the umask's permissions, like any other output
        torch.save(obj, out.tmp)
    return path


# The largest lifter a config may ask for (the shipped ones have 1.7-9.6 M parameters) and the largest weights
# file (its zip entries, inflated); a config or a file past them is refused before anything is allocated.
MAX_PARAMETERS = 200_000_000
MAX_CHECKPOINT_BYTES = 1 << 30


def plan_model(spec: LifterSpec, config) -> dict[str, tuple[int, ...]]:
    """The state dict's shapes that ``config`` gives, from a model built on the meta device (no memory); ValueError
    for a config that does not build or asks for more than MAX_PARAMETERS."""
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. initialising the zero-size tensors of a nonsense config
            model = spec.model_cls(config)
    except Exception as exc:  # noqa: BLE001 - any failure of a config to build is a bad config
        raise ValueError(f"it does not build a {spec.name} model ({type(exc).__name__}: {exc})") from None
    count = sum(p.numel() for p in model.parameters())
    if count > MAX_PARAMETERS:
        raise ValueError(f"it asks for {count:,} parameters, more than the {MAX_PARAMETERS:,} a lifter may have")
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def new_model(name: str, frames: int | None = None, **overrides):
    """(spec, config, model) with fresh random weights: for training and for tests of mechanics."""
    spec = get_spec(name)
    config = spec.config_for_frames(frames or spec.default_frames, **overrides)
    plan_model(spec, config)
    return spec, config, spec.model_cls(config)


def _check_archive(path: Path) -> None:
    """A weights file is a zip (torch's format) whose entries inflate to at most MAX_CHECKPOINT_BYTES."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError):
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (not torch's zip format)") from None
    if inflated > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{path} was not loaded: it inflates to {inflated / (1 << 30):.3g} GiB, more than the "
                              f"{MAX_CHECKPOINT_BYTES / (1 << 30):.3g} GiB a lifter's weights may hold")


def load_checkpoint(path: str | Path, device: str | torch.device | None = "cpu", expect: str | None = None) -> Lifter:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    _check_archive(path)
    try:  # mapped, not read: no tensor is in memory until it is used (and only checked ones are)
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch raises many kinds for a file that is not a checkpoint
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT \
            or not isinstance(ckpt.get("state_dict"), dict) or not isinstance(ckpt.get("config"), dict) \
            or not isinstance(ckpt.get("lifter"), str):
        raise CheckpointError(f"{path} is not a video3d lifter checkpoint (format {CHECKPOINT_FORMAT})")
    if expect is not None and ckpt["lifter"] != expect:
        raise CheckpointError(f"{path} holds {ckpt['lifter']} weights, not {expect}")
    try:
        spec = get_spec(ckpt["lifter"])
        config = build_config(spec, ckpt["config"])
        planned = plan_model(spec, config)  # before any memory: a config may ask for a terabyte
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, Video3DError):
            raise
        raise CheckpointError(f"{path} has a malformed lifter configuration ({type(exc).__name__}: {exc})") from None
    given = ckpt["state_dict"]
    odd = [k for k, v in given.items() if not isinstance(v, torch.Tensor)]
    unexpected, missing = sorted(set(given) - set(planned), key=str), sorted(set(planned) - set(given))
    wrong = [k for k in planned if k in given and not odd.count(k) and tuple(given[k].shape) != planned[k]]
    if odd or unexpected or missing or wrong:
        what = (f"a non-tensor under {odd[0]!r}" if odd else f"an unexpected entry {unexpected[0]!r}" if unexpected
                else f"no {missing[0]!r}" if missing else
                f"{wrong[0]!r} of shape {tuple(given[wrong[0]].shape)}, not {planned[wrong[0]]}")
        raise CheckpointError(f"{path} does not fit its own {spec.name} configuration ({what})")
    model = spec.model_cls(config)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    damaged = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if damaged:
        raise CheckpointError(f"{path} is damaged: {len(damaged)} tensor(s) hold NaN or inf ({damaged[0]}, ...)")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # missing / unexpected keys, wrong shapes
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{path} does not fit its own {spec.name} configuration ({first})") from None
    meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return Lifter(spec, model, config, meta, device=resolve_device(device), weights_path=path)
