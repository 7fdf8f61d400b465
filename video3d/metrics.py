"""Pose metrics named after the papers. Inputs are (..., J, 3) arrays in the same units;
results are in those units (multiply metres by 1000 for mm). Pure numpy functions.

- ``mpjpe`` (Protocol 1): mean Euclidean joint error.
- ``p_mpjpe`` (Protocol 2): error after a per-frame similarity Procrustes alignment
  (rotation, translation, scale; reflections excluded).
- ``n_mpjpe`` (N-MPJPE, Rhodin et al. 2018): error after the per-frame optimal scale only.
- ``mpjve``: mean error of the first time-derivative (frames along axis 0).
"""

from __future__ import annotations

import numpy as np


def _check(predicted: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predicted = np.asarray(predicted, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if predicted.shape != target.shape or predicted.ndim < 2 or predicted.shape[-1] != 3:
        raise ValueError(f"expected two (..., J, 3) arrays of one shape, got {predicted.shape} and {target.shape}")
    return predicted, target


def per_joint_errors(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    predicted, target = _check(predicted, target)
    return np.linalg.norm(predicted - target, axis=-1)


def mpjpe(predicted: np.ndarray, target: np.ndarray) -> float:
    """Mean per-joint position error."""
    return float(per_joint_errors(predicted, target).mean())


def procrustes_align(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Align each pose of ``predicted`` (..., J, 3) to ``target`` with the optimal similarity transform."""
    predicted, target = _check(predicted, target)
    mu_x = target.mean(axis=-2, keepdims=True)
    mu_y = predicted.mean(axis=-2, keepdims=True)
    x0 = target - mu_x
    y0 = predicted - mu_y
    norm_x = np.sqrt(np.sum(x0**2, axis=(-2, -1), keepdims=True))
    norm_y = np.sqrt(np.sum(y0**2, axis=(-2, -1), keepdims=True))
    norm_x = np.where(norm_x == 0, 1.0, norm_x)
    norm_y = np.where(norm_y == 0, 1.0, norm_y)
    x0 = x0 / norm_x
    y0 = y0 / norm_y
    h = np.swapaxes(x0, -1, -2) @ y0
    u, s, vt = np.linalg.svd(h)
    v = np.swapaxes(vt, -1, -2)
    r = v @ np.swapaxes(u, -1, -2)
    # No reflections: flip the last singular direction where det(R) < 0.
    sign_det = np.sign(np.linalg.det(r))[..., None]
    v[..., -1] *= sign_det
    s[..., -1] *= sign_det[..., 0]
    r = v @ np.swapaxes(u, -1, -2)
    tr = s.sum(axis=-1)[..., None, None]
    a = tr * norm_x / norm_y
    t = mu_x - a * (mu_y @ r)
    return a * (predicted @ r) + t


def p_mpjpe(predicted: np.ndarray, target: np.ndarray) -> float:
    """MPJPE after per-frame similarity Procrustes alignment (Protocol 2)."""
    return mpjpe(procrustes_align(predicted, target), target)


def n_mpjpe(predicted: np.ndarray, target: np.ndarray) -> float:
    """MPJPE after scaling each predicted pose by its least-squares optimal factor."""
    predicted, target = _check(predicted, target)
    norm_predicted = np.sum(predicted**2, axis=(-2, -1), keepdims=True)
    norm_predicted = np.where(norm_predicted == 0, 1.0, norm_predicted)
    scale = np.sum(target * predicted, axis=(-2, -1), keepdims=True) / norm_predicted
    return mpjpe(scale * predicted, target)


def mpjve(predicted: np.ndarray, target: np.ndarray) -> float:
    """Mean per-joint velocity error: frames along axis 0, per frame (multiply by fps for per second)."""
    predicted, target = _check(predicted, target)
    if predicted.shape[0] < 2:
        raise ValueError("mpjve needs at least two frames")
    return mpjpe(np.diff(predicted, axis=0), np.diff(target, axis=0))


def foot_sliding(world: np.ndarray, fps: float, feet: tuple[int, ...] = (3, 6), contact_height: float = 0.05,
                 up_axis: int = 2) -> tuple[float, float]:
    """Foot skating of a world-frame sequence (T, J, 3), metres, the floor at 0 along ``up_axis``: the mean
    horizontal speed (m/s) of a foot over the steps where it is on the floor (below ``contact_height``) at both
    ends, and the share of (foot, step) pairs in contact. A planted foot should not move (0 m/s); frames with a
    missing foot (NaN) are left out. Default feet: the ankles of Human3.6M-17."""
    world = np.asarray(world, dtype=np.float64)
    if world.ndim != 3 or world.shape[-1] != 3 or world.shape[0] < 2:
        raise ValueError(f"expected (T >= 2, J, 3) world poses, got {world.shape}")
    f = world[:, list(feet)]  # (T, F, 3)
    height = f[..., up_axis]  # (T, F)
    flat = np.delete(f, up_axis, axis=-1)  # (T, F, 2) the floor plane
    down = height < contact_height  # NaN compares False: a missing foot is not in contact
    both = down[1:] & down[:-1]  # (T-1, F)
    step = np.linalg.norm(np.diff(flat, axis=0), axis=-1)  # (T-1, F) metres per frame
    valid = np.isfinite(step)
    both &= valid
    share = float(both.sum() / max(valid.sum(), 1))
    speed = float(step[both].mean() * fps) if both.any() else 0.0
    return speed, share
