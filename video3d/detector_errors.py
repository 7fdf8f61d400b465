"""A detector's 2D errors, recorded on rendered clips with known truth, replayed on training windows.

The lifters train on 2D projected from motion capture, which is exact; at inference they get YOLO's 2D, which
puts ankles at mid-shin on seated people, loses the face from behind (and with it the COCO-made thorax and
head), jitters with the person's size and swaps left and right. An ``ErrorBank`` holds what the whole
inference path really hands a lifter on rendered clips of the training subjects (``scripts/detector_errors.py``
builds one: detect, ``pipeline.lift``'s own preparation: swap repair, COCO -> H36M, gap filling, rescale,
normalisation) minus the same path applied to the true 2D:

- ``residual`` (N, L, 17, 2): the error of each joint in each frame of a window of L frames, in units of the
  true pose's size (``geometry.pose_spread``), with any left/right exchange left after the repair undone first;
- ``swapped`` (N, L, 2): whether the legs and the arms were exchanged (left for right) against the truth;
- ``view`` (N,): the view of the person in the window's middle frame, one of ``VIEW_BINS`` bins of
  ``view_azimuth`` (the errors depend on it: the face is lost from behind, left and right swap side-on).

``DetectorErrors.apply`` adds, to each training window chosen with probability p, a random window of the bank
from the same view bin (scaled to the window's own size) and its swaps. Every bank entry has its mirror image
in the bank too, so the errors are symmetric as the flip augmentation is.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import Video3DError
from .layouts import H36M17
from .untrusted import check_npz
from .virtual_camera import spread

BANK_FORMAT = "video3d-detector-errors-1"
VIEW_BINS = 8
LEGS = ((4, 1), (5, 2), (6, 3))  # H36M-17 (left, right): hips, knees, ankles
ARMS = ((11, 14), (12, 15), (13, 16))  # shoulders, elbows, wrists


class BankError(Video3DError, ValueError):
    """An error bank file that is not one."""


def view_azimuth(pose: torch.Tensor) -> torch.Tensor:
    """The view of root-relative H36M-17 poses (..., 17, 3) in camera axes (x right, y down, z forward):
    the angle (radians, -pi..pi) of the person's facing about their spine, 0 when they face the camera, +-pi
    from behind; positive when they face towards the right of the image."""
    hips = pose[..., 4, :] - pose[..., 1, :]  # their right -> left
    spine = pose[..., 8, :] - pose[..., 0, :]  # up the body
    forward = torch.linalg.cross(hips, spine)  # the way they face
    return torch.atan2(forward[..., 0], -forward[..., 2])


def view_bin(azimuth: torch.Tensor, bins: int = VIEW_BINS) -> torch.Tensor:
    """Bins of ``bins`` equal arcs, bin 0 centred on facing the camera."""
    shifted = (azimuth / (2 * math.pi) * bins + 0.5).floor().long()
    return torch.remainder(shifted, bins)


def exchange_index(pairs) -> list[int]:
    """A joint index (17,) that exchanges the (left, right) ``pairs``."""
    index = list(range(H36M17.num_joints))
    for a, b in pairs:
        index[a], index[b] = b, a
    return index


@dataclass
class ErrorBank:
    residual: np.ndarray  # (N, L, 17, 2) float32
    swapped: np.ndarray  # (N, L, 2) bool: legs, arms
    view: np.ndarray  # (N,) int64
    meta: dict = field(default_factory=dict)  # str -> str: where it came from

    def __post_init__(self) -> None:
        r, s, v = self.residual, self.swapped, self.view
        if r.ndim != 4 or r.shape[2:] != (17, 2) or r.shape[0] < 1:
            raise BankError(f"residual must be (N, L, 17, 2), not {r.shape}")
        if s.shape != r.shape[:2] + (2,) or v.shape != r.shape[:1]:
            raise BankError(f"swapped {s.shape} and view {v.shape} do not match residual {r.shape}")
        if not np.isfinite(r).all():
            raise BankError("residual has non-finite values")
        if v.min() < 0 or v.max() >= VIEW_BINS:
            raise BankError(f"view bins must be in 0..{VIEW_BINS - 1}")

    @property
    def window(self) -> int:
        return int(self.residual.shape[1])

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, format=BANK_FORMAT, residual=self.residual.astype(np.float32),
                            swapped=self.swapped.astype(bool), view=self.view.astype(np.int64),
                            meta_keys=np.array(list(self.meta), dtype=str),
                            meta_values=np.array([str(v) for v in self.meta.values()], dtype=str))
        os.replace(tmp, path)
        return path


def load_bank(path: str | os.PathLike) -> ErrorBank:
    """Read a bank written by ``ErrorBank.save`` (no pickles: plain arrays only)."""
    try:
        check_npz(path)  # sizes before anything is inflated
        with np.load(path, allow_pickle=False) as d:
            if "format" not in d.files or str(d["format"]) != BANK_FORMAT:
                raise BankError(f"{path}: not a detector error bank ({BANK_FORMAT})")
            bank = ErrorBank(d["residual"].astype(np.float32), d["swapped"].astype(bool), d["view"].astype(np.int64),
                             dict(zip(d["meta_keys"].tolist(), d["meta_values"].tolist())))
    except BankError:
        raise
    except (OSError, ValueError, KeyError) as e:
        raise BankError(f"{path}: cannot read a detector error bank ({e})") from None
    return bank


def mirrored(bank: ErrorBank) -> ErrorBank:
    """The bank and its mirror image (x negated, left and right exchanged, the view's azimuth negated)."""
    flip = list(H36M17.flip_index)
    r = bank.residual[:, :, flip].copy()
    r[..., 0] *= -1
    centre = (np.arange(VIEW_BINS) * 2 * math.pi / VIEW_BINS)
    view = np.array([int(np.argmin(np.abs(np.angle(np.exp(1j * (-centre[v] - centre)))))) for v in bank.view])
    return ErrorBank(np.concatenate([bank.residual, r]), np.concatenate([bank.swapped, bank.swapped]),
                     np.concatenate([bank.view, view]), dict(bank.meta))


class DetectorErrors:
    """An ``ErrorBank`` on a device, for ``apply`` on training batches."""

    def __init__(self, bank: ErrorBank, device: torch.device | str = "cpu"):
        order = np.argsort(bank.view, kind="stable")
        self.window = bank.window
        self.residual = torch.from_numpy(bank.residual[order]).to(device)  # (N, L, 17, 2), sorted by view
        self.swapped = torch.from_numpy(bank.swapped[order]).to(device)  # (N, L, 2)
        counts = np.bincount(bank.view, minlength=VIEW_BINS)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        # a view with no entries draws from the whole bank
        self.start = torch.as_tensor(np.where(counts > 0, starts, 0), device=device)
        self.count = torch.as_tensor(np.where(counts > 0, counts, len(order)), device=device)
        self.legs = torch.as_tensor(exchange_index(LEGS), device=device)
        self.arms = torch.as_tensor(exchange_index(ARMS), device=device)

    def apply(self, x: torch.Tensor, y: torch.Tensor, p: float,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows x (B, F, 17, 2) with their targets y (B, F_out, 17, 3): each with probability p given a
        detector's errors from the bank. Returns (x, which (B,) bool)."""
        B, F = x.shape[:2]
        if F > self.window:
            raise BankError(f"the bank's windows have {self.window} frames; the lifter takes {F}")
        device = x.device
        views = view_bin(view_azimuth(y[:, y.shape[1] // 2].float()))  # (B,)
        u = torch.rand((3, B), generator=generator, device=device)
        use = u[0] < p
        count = self.count[views]
        pick = self.start[views] + torch.minimum((u[1] * count).long(), count - 1)  # (B,): an entry of that view
        offset = (u[2] * (self.window - F + 1)).long().clamp(max=self.window - F)  # (B,)
        frames = offset[:, None] + torch.arange(F, device=device)[None]  # (B, F)
        residual = self.residual[pick[:, None], frames].to(x.dtype)  # (B, F, 17, 2)
        swapped = self.swapped[pick[:, None], frames]  # (B, F, 2)
        size = spread(x).mean(1)[:, None, None, None]  # (B, 1, 1, 1): the window's mean pose size
        noisy = x + residual * size
        noisy = torch.where(swapped[..., 0, None, None], noisy[:, :, self.legs], noisy)
        noisy = torch.where(swapped[..., 1, None, None], noisy[:, :, self.arms], noisy)
        return torch.where(use[:, None, None, None], noisy, x), use
