"""Joints lost as a detector loses them, for training (``training.augment``) and robustness evaluation
(``evaluation.Perturbation``): random spans of random joints replaced by what the pipeline does for missing
joints (``tracks.fill_missing``: linear interpolation in time, held at the edges)."""

from __future__ import annotations

import numpy as np


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
