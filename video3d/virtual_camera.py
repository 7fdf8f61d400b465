"""Random virtual cameras for training: Human3.6M's 3D seen from the viewpoints, distances and lenses users have.

Human3.6M films every subject with the same four cameras (about 1.5 m high, 4-6 m away, 47 degrees across),
so a lifter trained on them only knows those views. ``virtual_views`` takes windows of 3D poses (absolute
camera-space positions, with the world's up direction) and films them again through a pinhole camera drawn
per window from ``CameraRange``: anywhere around the person (azimuth all round), from level to well above,
near or far, wide or telephoto, slightly rolled, the person anywhere in the middle of the frame. The 2D is
normalised as the lifters' input (``geometry.normalize_screen_coordinates``: the principal point at the
frame's centre, so the frame's aspect drops out) and then scaled about the pelvis to the lifter's typical
training size, as ``pipeline.lift`` does for every person (``--rescale``), with a small random factor: the
person's size in the frame is what the rescale removes, the perspective of a near camera is what stays.
The 3D target is the same poses, root-relative, in the virtual camera's axes.

Tensor ops only (the trainer's data loop runs them on the training device), every draw from the caller's
generator, so a run is reproducible and resumable.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class CameraRange:
    """What a virtual camera is drawn from (uniform, or log-uniform where said)."""

    elevation_deg: tuple[float, float] = (-10.0, 40.0)  # the camera's height angle above the person's pelvis
    distance_m: tuple[float, float] = (2.5, 20.0)  # log-uniform: camera to pelvis (window's centre frame)
    focal_w: tuple[float, float] = (0.55, 2.8)  # log-uniform: focal length / frame width (79 to 20 degrees across)
    roll_deg: float = 8.0  # +- about the optical axis
    offset: tuple[float, float] = (0.3, 0.2)  # +- where the pelvis is, from the frame's centre, in frame widths
    size_jitter: float = 0.15  # the rescale's target size x U(1 - j, 1 + j): a window is not the video's median

    def to_dict(self) -> dict:
        return asdict(self)


def _normalize(v: torch.Tensor) -> torch.Tensor:
    return v / torch.linalg.vector_norm(v, dim=-1, keepdim=True).clamp_min(1e-9)


def rotation_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) rotations taking unit vectors a (B, 3) to unit vectors b (B, 3) about a x b (Rodrigues)."""
    axis = torch.cross(a, b, dim=-1)
    s = torch.linalg.vector_norm(axis, dim=-1)  # sin of the angle
    c = (a * b).sum(-1)  # cos of the angle
    k = axis / s.clamp_min(1e-9)[:, None]
    zero = torch.zeros_like(s)
    K = torch.stack([zero, -k[:, 2], k[:, 1], k[:, 2], zero, -k[:, 0], -k[:, 1], k[:, 0], zero], -1).view(-1, 3, 3)
    eye = torch.eye(3, dtype=a.dtype, device=a.device).expand_as(K)
    return eye + s[:, None, None] * K + (1 - c)[:, None, None] * (K @ K)


def draw_cameras(centre: torch.Tensor, up: torch.Tensor, generator: torch.Generator,
                 camera_range: CameraRange = CameraRange()) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One camera per row: (rotation (B, 3, 3) into the virtual camera's axes, its position (B, 3), focal / frame
    width (B,)), in the coordinates of ``centre`` (B, 3: the point it is aimed near, the pelvis) and ``up``
    (B, 3: the world's up direction in those coordinates)."""
    B = len(centre)
    dtype, device = centre.dtype, centre.device

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(B, generator=generator, device=device, dtype=dtype)

    def log_uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.exp(uniform(math.log(lo), math.log(hi)))

    r = camera_range
    azimuth = uniform(0.0, 2 * math.pi)
    elevation = torch.deg2rad(uniform(*r.elevation_deg))
    distance = log_uniform(*r.distance_m)
    focal = log_uniform(*r.focal_w)
    roll = torch.deg2rad(uniform(-r.roll_deg, r.roll_deg))
    off_x, off_y = uniform(-r.offset[0], r.offset[0]), uniform(-r.offset[1], r.offset[1])

    u = _normalize(up)  # (B, 3)
    x_axis = torch.zeros_like(u)
    x_axis[:, 0] = 1.0
    e1 = _normalize(x_axis - (x_axis * u).sum(-1, keepdim=True) * u)  # horizontal
    e2 = torch.cross(u, e1, dim=-1)  # horizontal, at right angles
    towards_camera = (torch.cos(elevation)[:, None] * (torch.cos(azimuth)[:, None] * e1 + torch.sin(azimuth)[:, None] * e2)
                      + torch.sin(elevation)[:, None] * u)  # (B, 3)
    position = centre + distance[:, None] * towards_camera
    z = -towards_camera  # looking at the pelvis
    x = _normalize(torch.cross(z, u, dim=-1))  # right: level with the floor before the roll
    y = torch.cross(z, x, dim=-1)  # down
    cos_r, sin_r = torch.cos(roll)[:, None], torch.sin(roll)[:, None]
    x, y = cos_r * x + sin_r * y, -sin_r * x + cos_r * y
    look = torch.stack([x, y, z], dim=1)  # (B, 3, 3): rows are the camera's axes
    # turn the camera so that the pelvis is seen off-centre (a rotation, not an image shift: the oblique ray's
    # perspective is kept)
    ez = torch.zeros_like(u)
    ez[:, 2] = 1.0
    seen_at = _normalize(torch.stack([off_x / focal, off_y / focal, torch.ones_like(focal)], -1))
    rotation = rotation_between(ez, seen_at) @ look
    return rotation, position, focal


def project(points: torch.Tensor, rotation: torch.Tensor, position: torch.Tensor,
            focal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Points (B, F, J, 3) through cameras (B, ...): camera-space points (B, F, J, 3) and normalised 2D (B, F, J, 2)
    (x / w * 2 - 1, y / w * 2 - h / w with the principal point at the frame's centre: 2 f/w X/Z, 2 f/w Y/Z)."""
    cam = torch.einsum("bij,bfkj->bfki", rotation, points - position[:, None, None])  # (B, F, J, 3)
    depth = cam[..., 2:3].clamp_min(0.05)  # a joint behind the camera cannot happen at these distances; guard
    return cam, 2.0 * focal[:, None, None, None] * cam[..., :2] / depth


def spread(x: torch.Tensor) -> torch.Tensor:
    """``geometry.pose_spread`` for tensors: (..., J, 2) -> (...), the RMS distance of the joints from joint 0."""
    return torch.sqrt(((x - x[..., :1, :]) ** 2).sum(-1).mean(-1))


def virtual_views(points: torch.Tensor, up: torch.Tensor, centre_index: int, typical_spread: float,
                  generator: torch.Generator, camera_range: CameraRange = CameraRange()) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of absolute 3D poses (B, F, J, 3, metres, any camera's axes) and the up direction (B, 3) in those
    axes -> (normalised 2D (B, F, J, 2) through a random camera per window, scaled about each frame's pelvis to
    ``typical_spread`` x a random factor near 1 (one factor per window), root-relative 3D (B, F, J, 3) in that
    camera's axes)."""
    rotation, position, focal = draw_cameras(points[:, centre_index, 0], up, generator, camera_range)
    cam, x = project(points, rotation, position, focal)
    B = len(points)
    j = camera_range.size_jitter
    jitter = 1 - j + 2 * j * torch.rand(B, generator=generator, device=points.device, dtype=points.dtype)
    factor = typical_spread * jitter / spread(x).median(dim=1).values.clamp_min(1e-6)  # (B,)
    root = x[..., :1, :]
    x = root + factor[:, None, None, None] * (x - root)
    return x, cam - cam[..., :1, :]
