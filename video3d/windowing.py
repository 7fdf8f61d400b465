"""Windows of 2D frames for the lifters: one module for training and inference (as VideoPose3D's
``common/generators.py`` is), so that what a model is trained on and what it is run on are made the same way.

- ``flip``: mirror H36M-17 poses (arrays or tensors): negate x, exchange left and right.
- ``window_index``: the frames of the windows centred on given frames, edge frames repeated (clamped).
- A lifter's ``Windowing`` (``Dense``, ``Centre``, ``SequenceToSequence``) says how its model maps a window
  of 2D frames to 3D frames, which frames are its training targets (``offsets``) and how a whole sequence is
  lifted (``lift``): the lifter carries this behaviour, callers do not test its kind.
- ``TrainingWindows``: the training takes on the training device, windows gathered by index arithmetic.

Frame alignment, everywhere: the 3D pose given for frame i comes from the window centred on frame i.
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import numpy as np
import torch

from .layouts import H36M17

_FLIP_INDEX: dict[torch.device, torch.Tensor] = {}  # one copy per device: no host-to-device copy per step


def flip(x):
    """Mirror H36M-17 poses (..., J, C), a numpy array or a tensor: left and right joints exchanged, x negated
    (a new array; the input is untouched). Flipping twice gives the input back."""
    if isinstance(x, np.ndarray):
        out = x[..., H36M17.flip_index, :].copy()
        out[..., 0] *= -1
        return out
    if x.device not in _FLIP_INDEX:
        _FLIP_INDEX[x.device] = torch.as_tensor(H36M17.flip_index, device=x.device)
    sign = torch.ones(x.shape[-1], dtype=x.dtype, device=x.device)
    sign[0] = -1
    return x[..., _FLIP_INDEX[x.device], :] * sign


def window_index(centres: torch.Tensor, offsets: torch.Tensor, first, last) -> torch.Tensor:
    """(N, F) frame indices of the windows centred on ``centres`` (N,): centre + offset, clamped to each window's
    take [first, last] (scalars or (N,) tensors): frames before the start or after the end repeat the edge frame."""
    c = centres[:, None]  # (N, 1)
    lo = first[:, None] if torch.is_tensor(first) else first
    hi = last[:, None] if torch.is_tensor(last) else last
    return torch.clamp(c + offsets[None], lo, hi)  # (N, F)


class WindowOffsets(NamedTuple):
    inputs: np.ndarray  # (F,) the input frames of a window, relative to its centre
    targets: np.ndarray  # (F_out,) the frames whose 3D the model outputs, relative to the centre
    centre: int  # the output that belongs to the window's centre frame


class Windowing:
    """How a lifter's model maps windows of 2D frames to 3D frames. ``name`` is saved in checkpoints (``kind``)."""

    name = ""
    seq2seq = False  # every window predicts all of its frames ("blend" and "centre" placements apply)

    def offsets(self, model) -> WindowOffsets:
        raise NotImplementedError

    def default_hop(self, model) -> int | None:
        """Sampled frames between blended windows (sequence-to-sequence lifters only)."""
        return None

    def lift(self, model, inputs: torch.Tensor, batch_frames: int, mode: str = "centre",
             hop: int | None = None) -> torch.Tensor:
        """(V, T, J, 2) normalised 2D, V views (the input and its flip) -> (V, T, J, 3): frame t's 3D from the window
        centred on t, at most ``batch_frames`` input frames per forward pass."""
        raise NotImplementedError


def windows_per_pass(views: int, frames: int, batch_frames: int) -> int:
    # Small passes are also the fast ones on a CPU: at batch 8 STCFormer runs 1.3x faster per window than
    # at batch 256 (its activations stay in cache and the allocator reuses them). benchmarks/lifter_speed.py
    return max(1, batch_frames // (views * frames))


def each_frame(model, inputs: torch.Tensor, offsets, centre: int, batch_frames: int) -> torch.Tensor:
    """One window centred on every frame; its output ``centre`` is that frame's 3D. (V, T, J, 2) -> (V, T, J, 3)."""
    offsets = torch.as_tensor(np.asarray(offsets), device=inputs.device)  # (F,)
    V, T = inputs.shape[:2]
    F = len(offsets)
    per_pass = windows_per_pass(V, F, batch_frames)
    outs = []
    for start in range(0, T, per_pass):
        frames = torch.arange(start, min(T, start + per_pass), device=inputs.device)
        windows = inputs[:, window_index(frames, offsets, 0, T - 1)]  # (V, N, F, J, 2)
        N = len(frames)
        y = model(windows.reshape(V * N, F, *inputs.shape[2:]))  # (V*N, F_out, J, 3)
        outs.append(y[:, centre].reshape(V, N, -1, 3))  # (V, N, J, 3)
    return torch.cat(outs, dim=1)


class Dense(Windowing):
    """Convolutional: (B, T, J, 2) -> (B, T - RF + 1, J, 3), output t belongs to input t + RF // 2 (GAST-Net).
    A sequence is lifted in one pass per chunk over the edge-padded frames, not window by window."""

    name = "dense"

    def offsets(self, model) -> WindowOffsets:
        pad = model.receptive_field // 2
        return WindowOffsets(np.arange(-pad, pad + 1), np.zeros(1, int), 0)

    def lift(self, model, inputs, batch_frames, mode="centre", hop=None):
        rf = model.receptive_field
        pad = rf // 2
        V, T = inputs.shape[:2]
        padded = torch.cat([inputs[:, :1].expand(V, pad, -1, -1), inputs,
                            inputs[:, -1:].expand(V, pad, -1, -1)], dim=1)  # (V, T + RF - 1, J, 2)
        chunk = max(1, batch_frames // V)
        outs = []
        for start in range(0, T, chunk):
            stop = min(T, start + chunk)
            outs.append(model(padded[:, start: stop + rf - 1]))  # (V, stop - start, J, 3)
        return torch.cat(outs, dim=1)


class Centre(Windowing):
    """(B, F, J, 2) -> (B, 1, J, 3): the window's centre frame (PoseFormer)."""

    name = "center"

    def offsets(self, model) -> WindowOffsets:
        return WindowOffsets(np.asarray(model.window_offsets), np.zeros(1, int), 0)

    def lift(self, model, inputs, batch_frames, mode="centre", hop=None):
        return each_frame(model, inputs, model.window_offsets, 0, batch_frames)


class SequenceToSequence(Windowing):
    """(B, F, J, 2) -> (B, F, J, 3): every frame of the window (STCFormer), trained on all of them. A sequence is
    lifted one window per frame, keeping its centre output (``mode="centre"``, the papers' protocol), or with
    windows ``hop`` sampled frames apart whose every output is used (``mode="blend"``, see ``blend``)."""

    name = "seq2seq"
    seq2seq = True

    def offsets(self, model) -> WindowOffsets:
        offsets = np.asarray(model.window_offsets)
        return WindowOffsets(offsets, offsets, int(model.output_index))

    def default_hop(self, model) -> int:
        """A third of the window (each frame then gets three windows' outputs); chosen by measurement
        (weights/README.md, STCFormer)."""
        return max(1, len(model.window_offsets) // 3)

    def lift(self, model, inputs, batch_frames, mode="centre", hop=None):
        if mode == "blend":
            return blend(model, inputs, batch_frames, hop or self.default_hop(model))
        return each_frame(model, inputs, model.window_offsets, int(model.output_index), batch_frames)


def blend(model, inputs: torch.Tensor, batch_frames: int, hop: int) -> torch.Tensor:
    """Sequence-to-sequence windows every ``hop`` sampled frames, every output used. (V, T, J, 2) -> (V, T, J, 3).

    A window samples every ``step``-th frame (STCFormer: 3), so the frames fall into ``step`` interleaved
    subsequences (frame f is in subsequence f % step). In each, windows are centred on sampled positions
    0, hop, 2 hop, ... and on the last position, so both ends get a window centred on them, as in the
    "centre" mode. Output k of a window centred on frame c is the pose of frame c + offsets[k], and is
    used if that frame exists (edge padding repeats the end frames, whose outputs are dropped). Each
    frame's pose is the weighted mean of the outputs it gets, with weights falling linearly from the
    window's centre (F // 2 + 1) to its ends (1). With hop <= F every frame gets at least one output.
    """
    offsets = np.asarray(model.window_offsets)  # (F,)
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
    per_pass = windows_per_pass(V, F, batch_frames)
    for start in range(0, len(centres), per_pass):
        f = frames[start:start + per_pass]  # (N, F)
        N = f.shape[0]
        windows = inputs[:, f.clamp(0, T - 1)]  # (V, N, F, J, 2)
        y = model(windows.reshape(V * N, F, J, 2)).reshape(V, N, F, J, 3)  # (V, N, F, J, 3)
        keep = inside[start:start + per_pass]  # (N, F)
        w = ramp.expand(N, F)[keep]  # (K,) one weight per used output
        target = f[keep]  # (K,) the frame of each used output
        out.index_add_(1, target, y[:, keep] * w[None, :, None, None])  # y[:, keep]: (V, K, J, 3)
        weight.index_add_(0, target, w)
    return out / weight[None, :, None, None]


# --------------------------------------------------------------------------------------------
# training: all takes concatenated, on the training device
# --------------------------------------------------------------------------------------------
class TrainingWindows:
    """All takes concatenated as tensors on ``device`` (on a CPU they share the arrays' memory); a sample is the
    window of 2D frames around a centre frame and the 3D poses of the model's target frames (``WindowOffsets``).
    Windows at the ends of a take repeat its edge frames. ``active`` (numpy) holds the centres in use: every
    ``subsample``-th frame of each take, from a phase that rotates with the epoch (``phase``), or a fixed view."""

    def __init__(self, sequences, offsets: WindowOffsets, subsample: int = 1, device: torch.device | str = "cpu"):
        device = torch.device(device)
        lengths = np.array([len(s.positions_3d) for s in sequences])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self.first = np.repeat(starts, lengths)  # (N,): each frame's take's first frame
        self.last = self.first + np.repeat(lengths, lengths) - 1
        self.frame_in_take = np.arange(int(lengths.sum())) - self.first
        self.subsample = subsample
        self.offsets = offsets
        self.fixed = False
        self.phase(0)
        tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
        self.x2d = tensor(np.concatenate([s.normalized_2d() for s in sequences]).astype(np.float32))  # (N, J, 2)
        self.y3d = tensor(np.concatenate([s.positions_3d for s in sequences]).astype(np.float32))  # (N, J, 3)
        # each frame's root position and the world's up, in its camera's axes: what virtual cameras start from
        self.root = tensor(np.concatenate([s.trajectory for s in sequences]).astype(np.float32))  # (N, 3)
        self.up = tensor(np.repeat(np.stack([s.up if s.up is not None else np.array([0.0, -1.0, 0.0])
                                             for s in sequences]).astype(np.float32), lengths, axis=0))  # (N, 3)
        self.first_t, self.last_t = tensor(self.first), tensor(self.last)
        self.input_offsets = tensor(offsets.inputs)  # (F,)
        self.target_offsets = tensor(offsets.targets)  # (F_out,)
        # the input frames that are the targets: the centre (dense, centre) or all of them (sequence to sequence)
        self.target_in_input = tensor(np.array([int(np.nonzero(offsets.inputs == o)[0][0]) for o in offsets.targets]))
        self.centre_in_input = int(np.nonzero(offsets.inputs == 0)[0][0])

    @property
    def device(self) -> torch.device:
        return self.x2d.device

    def phase(self, epoch: int) -> None:
        """Use every ``subsample``-th frame as a centre, starting at ``epoch % subsample``, so that
        successive epochs cover all frames (a fixed view keeps its windows)."""
        if not self.fixed:
            self.active = np.nonzero(self.frame_in_take % self.subsample == epoch % self.subsample)[0]

    def shortest_phase(self) -> int:
        return int(np.bincount(self.frame_in_take % self.subsample, minlength=self.subsample).min())

    def __len__(self) -> int:
        return len(self.active)

    def view(self, active: np.ndarray) -> "TrainingWindows":
        """These windows only (indices into all frames), fixed: ``phase`` leaves them as they are."""
        view = copy.copy(self)  # the tensors are shared
        view.active, view.fixed = np.asarray(active), True
        return view

    def fixed_sample(self, n: int, seed: int) -> "TrainingWindows":
        """A view of ``n`` windows drawn once from all frames (not one phase), the same in every epoch."""
        n = min(n, len(self.frame_in_take))
        return self.view(np.sort(np.random.default_rng([seed, 7]).choice(len(self.frame_in_take), size=n,
                                                                          replace=False)))

    def thinned(self, keep: float, least: int = 64) -> "TrainingWindows":
        """Every k-th of these windows, k such that about ``keep`` of them stay (never fewer than ``least``)."""
        k = max(1, min(math.ceil(1.0 / max(keep, 1e-9)), len(self.active) // least))
        return self.view(self.active[::k])

    def centres(self, which: np.ndarray) -> torch.Tensor:
        """The centre frames of active windows ``which`` (positions in ``active``), on the device."""
        return torch.from_numpy(self.active[which]).to(self.device)

    def frames(self, centres: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return window_index(centres, offsets, self.first_t[centres], self.last_t[centres])

    def batch(self, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows around these frames (indices into all frames): x (B, F, J, 2), y (B, F_out, J, 3)."""
        x = self.x2d[self.frames(centres, self.input_offsets)]  # (B, F, J, 2)
        y = self.y3d[self.frames(centres, self.target_offsets)]  # (B, F_out, J, 3)
        return x, y

    def virtual(self, centres: torch.Tensor, x: torch.Tensor, y: torch.Tensor, p: float, typical_spread: float,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The windows ``batch(centres)`` gave (x, y), each with probability ``p`` seen through a random virtual
        camera instead (``virtual_camera.virtual_views``)."""
        from .virtual_camera import virtual_views

        frames = self.frames(centres, self.input_offsets)  # (B, F)
        points = self.y3d[frames] + self.root[frames][:, :, None]  # (B, F, J, 3): absolute, the take's camera axes
        x_v, y_v = virtual_views(points, self.up[centres], self.centre_in_input, typical_spread, generator)
        y_v = y_v[:, self.target_in_input]  # (B, F_out, J, 3)
        use = torch.rand(len(centres), generator=generator, device=x.device) < p
        return (torch.where(use[:, None, None, None], x_v, x), torch.where(use[:, None, None, None], y_v, y))
