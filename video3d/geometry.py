"""Camera geometry in the VideoPose3D convention (numpy, float32/float64 alike).

- quaternions are (w, x, y, z), camera-to-world;
- world -> camera: X_cam = rotate(conj(q), X_world - t);
- 2D projection with Brown distortion as VideoPose3D's ``project_to_2d``;
- screen normalisation keeps the aspect ratio: x' = x / w * 2 - 1, y' = y / w * 2 - h / w.
"""

from __future__ import annotations

import numpy as np


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4) (w, x, y, z); q broadcasts."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v)
    w, qvec = q[..., :1], q[..., 1:]
    uv = np.cross(qvec, v)
    uuv = np.cross(qvec, uv)
    return (v + 2.0 * (w * uv + uuv)).astype(v.dtype)


def qinverse(q: np.ndarray) -> np.ndarray:
    q = np.array(q, dtype=np.float64, copy=True)
    q[..., 1:] *= -1
    return q


def world_to_camera(x: np.ndarray, orientation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """World points (..., 3) -> camera coordinates; translation in the same units as x."""
    return qrot(qinverse(orientation), x - np.asarray(translation, dtype=x.dtype))


def project_to_2d(x: np.ndarray, intrinsics: dict) -> np.ndarray:
    """Project camera-space points (..., 3) to pixels (..., 2) with radial and tangential distortion."""
    f = np.asarray(intrinsics["focal_length"], dtype=np.float64)
    c = np.asarray(intrinsics["center"], dtype=np.float64)
    k = np.asarray(intrinsics["radial_distortion"], dtype=np.float64)
    p = np.asarray(intrinsics["tangential_distortion"], dtype=np.float64)
    xx = np.clip(x[..., :2] / x[..., 2:3], -1.0, 1.0)
    r2 = np.sum(xx**2, axis=-1, keepdims=True)
    radial = 1.0 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
    tan = np.sum(p * xx, axis=-1, keepdims=True)
    xxx = xx * (radial + tan) + p[::-1] * r2
    return (f * xxx + c).astype(x.dtype)


def normalize_screen_coordinates(x: np.ndarray, w: float, h: float) -> np.ndarray:
    """Pixels -> [-1, 1] along x, aspect kept along y (the lifters' input)."""
    return x / w * 2.0 - np.array([1.0, h / w], dtype=x.dtype)


def solve_translation(keypoints_2d: np.ndarray, poses_3d: np.ndarray, focal: float, center: tuple[float, float],
                      weights: np.ndarray | None = None) -> np.ndarray:
    """Per frame, the camera-space translation t that best places root-relative 3D poses (T, J, 3) on
    their 2D keypoints (T, J, 2) through a pinhole camera (focal, center): linear least squares on
    f (X + tx) = u' (Z + tz), f (Y + ty) = v' (Z + tz). Frames that cannot be solved are NaN.
    The focal length is rarely known for a video, so the result is approximate."""
    u = keypoints_2d[..., 0] - center[0]
    v = keypoints_2d[..., 1] - center[1]
    X, Y, Z = poses_3d[..., 0], poses_3d[..., 1], poses_3d[..., 2]
    w = np.ones_like(u) if weights is None else np.asarray(weights, dtype=np.float64)
    ok = np.isfinite(u) & np.isfinite(v) & np.isfinite(X) & (w > 0)
    w = np.where(ok, w, 0.0)
    u, v, X, Y, Z = (np.where(ok, a, 0.0) for a in (u, v, X, Y, Z))
    T = u.shape[0]
    zeros = np.zeros_like(u)
    # rows: [f, 0, -u'] . t = u' Z - f X   and   [0, f, -v'] . t = v' Z - f Y
    A = np.concatenate([np.stack([np.full_like(u, focal), zeros, -u], -1),
                        np.stack([zeros, np.full_like(v, focal), -v], -1)], axis=1)  # (T, 2J, 3)
    b = np.concatenate([u * Z - focal * X, v * Z - focal * Y], axis=1)  # (T, 2J)
    ww = np.concatenate([w, w], axis=1)[..., None]
    AtA = np.einsum("tji,tjk->tik", A * ww, A)
    Atb = np.einsum("tji,tj->ti", A * ww, b)
    out = np.full((T, 3), np.nan)
    solvable = ok.sum(1) >= 3
    if solvable.any():
        out[solvable] = np.linalg.solve(AtA[solvable] + 1e-9 * np.eye(3), Atb[solvable][..., None])[..., 0]
    return out.astype(np.float32)


def pose_spread(x: np.ndarray) -> np.ndarray:
    """The size of 2D poses (..., J, 2): the RMS distance of the joints from joint 0 (the H36M pelvis)."""
    return np.sqrt(((x - x[..., :1, :]) ** 2).sum(-1).mean(-1))


def fit_scale(x: np.ndarray, size: float) -> float:
    """The factor that makes the median size (``pose_spread``) of a sequence of poses (T, J, 2) ``size``
    (frames with a missing joint do not count); 1 when it cannot be measured."""
    sizes = pose_spread(x)
    sizes = sizes[np.isfinite(sizes)]
    m = float(np.median(sizes)) if len(sizes) else 0.0
    return float(size / m) if m > 0 else 1.0


def rescale_about_root(x: np.ndarray, factor: float) -> np.ndarray:
    """Scale each pose (..., J, 2) by ``factor`` about its own joint 0: the root stays where it is."""
    root = x[..., :1, :]
    return (root + (x - root) * factor).astype(x.dtype)
