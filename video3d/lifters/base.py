"""The lifter runtime shared by every model: checkpoints that rebuild their own model, windowed
inference over whole sequences (edge padding, batching, flip test-time augmentation) and frame
alignment: the 3D pose returned for frame i always comes from the window centred on frame i.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DeviceError, Video3DError
from ..io import AtomicPath
from ..layouts import H36M17
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
            inputs = torch.cat([inputs, flip_pose(inputs)], dim=0)  # (2, T, J, 2)
        if self.spec.kind == "dense":
            out = self._predict_dense(inputs, batch_frames)
        elif self.spec.kind == "seq2seq" and windows == "blend":
            out = self._predict_blend(inputs, batch_frames, hop or self.default_hop)
        else:
            out = self._predict_windows(inputs, batch_frames)  # (V, T, J, 3)
        if flip:
            out = (out[0] + flip_pose(out[1:2])[0]) / 2.0
        else:
            out = out[0]
        out[:, 0] = 0.0  # pelvis at the origin, exactly
        return out.float().cpu().numpy()

    @property
    def default_hop(self) -> int:
        """Sampled frames between the windows of ``predict(windows="blend")``: a third of the window (each
        frame then gets three windows' outputs); chosen by measurement (weights/README.md, STCFormer)."""
        return max(1, len(self.model.window_offsets) // 3)

    def _predict_dense(self, inputs: torch.Tensor, batch_frames: int) -> torch.Tensor:
        rf = self.receptive_field
        pad = rf // 2
        V, T = inputs.shape[:2]
        padded = torch.cat([inputs[:, :1].expand(V, pad, -1, -1), inputs,
                            inputs[:, -1:].expand(V, pad, -1, -1)], dim=1)  # (V, T + RF - 1, J, 2)
        chunk = max(1, batch_frames // V)
        outs = []
        for start in range(0, T, chunk):
            stop = min(T, start + chunk)
            outs.append(self.model(padded[:, start: stop + rf - 1]))  # (V, stop - start, J, 3)
        return torch.cat(outs, dim=1)

    def _windows_per_pass(self, V: int, F: int, batch_frames: int) -> int:
        # Small passes are also the fast ones on a CPU: at batch 8 STCFormer runs 1.3x faster per window than
        # at batch 256 (its activations stay in cache and the allocator reuses them). benchmarks/lifter_speed.py
        return max(1, batch_frames // (V * F))

    def _predict_windows(self, inputs: torch.Tensor, batch_frames: int) -> torch.Tensor:
        """One window centred on every frame, keep the centre output (the 'center' and 'seq2seq' kinds)."""
        offsets = torch.as_tensor(self.model.window_offsets, device=inputs.device)  # (F,)
        centre = 0 if self.spec.kind == "center" else int(self.model.output_index)  # seq2seq: the window's centre
        V, T = inputs.shape[:2]
        F = len(offsets)
        per_batch = self._windows_per_pass(V, F, batch_frames)
        outs = []
        for start in range(0, T, per_batch):
            frames = torch.arange(start, min(T, start + per_batch), device=inputs.device)
            index = (frames[:, None] + offsets[None]).clamp(0, T - 1)  # (N, F): edge padding by clamping
            windows = inputs[:, index]  # (V, N, F, J, 2)
            N = index.shape[0]
            y = self.model(windows.reshape(V * N, F, *inputs.shape[2:]))  # (V*N, F_out, J, 3)
            outs.append(y[:, centre].reshape(V, N, -1, 3))
        return torch.cat(outs, dim=1)

    def _predict_blend(self, inputs: torch.Tensor, batch_frames: int, hop: int) -> torch.Tensor:
        """Sequence-to-sequence windows every ``hop`` sampled frames, every output used.

        A window samples every ``step``-th frame (STCFormer: 3), so the frames fall into ``step`` interleaved
        subsequences (frame f is in subsequence f % step). In each, windows are centred on sampled positions
        0, hop, 2 hop, ... and on the last position, so both ends get a window centred on them, as in the
        "centre" mode. Output k of a window centred on frame c is the pose of frame c + offsets[k], and is
        used if that frame exists (edge padding repeats the end frames, whose outputs are dropped). Each
        frame's pose is the weighted mean of the outputs it gets, with weights falling linearly from the
        window's centre (F // 2 + 1) to its ends (1). With hop <= F every frame gets at least one output.
        """
        offsets = np.asarray(self.model.window_offsets)  # (F,)
        F = len(offsets)
        step = int(offsets[1] - offsets[0]) if F > 1 else 1
        if F > 1 and not (np.diff(offsets) == step).all() or offsets[F // 2] != 0:
            raise ValueError("blended windows need evenly spaced window offsets centred on 0")
        hop = min(max(1, int(hop)), F)
        V, T, J = inputs.shape[:3]
        centres = []
        for r in range(min(step, T)):  # one subsequence per residue r: frames r, r + step, ...
            n = (T - 1 - r) // step + 1
            positions = np.arange(0, n, hop)
            if positions[-1] != n - 1:
                positions = np.append(positions, n - 1)
            centres.append(r + step * positions)
        centres = np.concatenate(centres)  # (N,) the frame each window is centred on
        frames = torch.as_tensor(centres[:, None] + offsets[None], device=inputs.device)  # (N, F) may be outside
        inside = (frames >= 0) & (frames < T)  # (N, F)
        half = F // 2
        ramp = torch.as_tensor(half + 1 - np.abs(np.arange(F) - half), dtype=inputs.dtype, device=inputs.device)
        out = torch.zeros(V, T, J, 3, dtype=inputs.dtype, device=inputs.device)
        weight = torch.zeros(T, dtype=inputs.dtype, device=inputs.device)
        per_batch = self._windows_per_pass(V, F, batch_frames)
        for start in range(0, len(centres), per_batch):
            f = frames[start:start + per_batch]  # (N, F)
            N = f.shape[0]
            windows = inputs[:, f.clamp(0, T - 1)]  # (V, N, F, J, 2)
            y = self.model(windows.reshape(V * N, F, J, 2)).reshape(V, N, F, J, 3)  # (V, N, F, J, 3)
            keep = inside[start:start + per_batch]  # (N, F)
            w = ramp.expand(N, F)[keep]  # (K,) one weight per used output
            target = f[keep]  # (K,) the frame of each used output
            out.index_add_(1, target, y[:, keep] * w[None, :, None, None])  # y[:, keep]: (V, K, J, 3)
            weight.index_add_(0, target, w)
        return out / weight[None, :, None, None]

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
            "kind": self.spec.kind,
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


def flip_pose(x: torch.Tensor) -> torch.Tensor:
    """Mirror H36M-17 poses (..., J, C) horizontally: negate x and swap left and right joints."""
    x = x[..., torch.as_tensor(H36M17.flip_index, device=x.device), :].clone()
    x[..., 0] *= -1
    return x


def new_model(name: str, frames: int | None = None, **overrides):
    """(spec, config, model) with fresh random weights: for training and for tests of mechanics."""
    spec = get_spec(name)
    config = spec.config_for_frames(frames or spec.default_frames, **overrides)
    return spec, config, spec.model_cls(config)


def load_checkpoint(path: str | Path, device: str | torch.device | None = "cpu", expect: str | None = None) -> Lifter:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a file that is not a checkpoint
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT \
            or not isinstance(ckpt.get("state_dict"), dict) or not isinstance(ckpt.get("config"), dict):
        raise CheckpointError(f"{path} is not a video3d lifter checkpoint (format {CHECKPOINT_FORMAT})")
    if expect is not None and ckpt["lifter"] != expect:
        raise CheckpointError(f"{path} holds {ckpt['lifter']} weights, not {expect}")
    try:
        spec = get_spec(ckpt["lifter"])
        config = build_config(spec, ckpt["config"])
        model = spec.model_cls(config)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, Video3DError):
            raise
        raise CheckpointError(f"{path} has a malformed lifter configuration ({type(exc).__name__}: {exc})") from None
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
