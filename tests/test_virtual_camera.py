"""Virtual cameras for training (video3d.virtual_camera): geometry that could be wrong."""

import math

import numpy as np
import torch

from video3d.virtual_camera import CameraRange, draw_cameras, project, spread, virtual_views


def _walk(B=6, F=9):
    """Absolute poses (B, F, 17, 3) in a camera looking along +z, up = -y: a person 5 m away."""
    g = torch.Generator().manual_seed(1)
    pose = torch.randn(17, 3, generator=g) * 0.3
    pose[0] = 0.0
    t = torch.arange(F, dtype=torch.float32)[:, None, None] * torch.tensor([0.02, 0.0, 0.0])
    pts = pose[None] + t + torch.tensor([0.0, 0.0, 5.0])
    return pts[None].repeat(B, 1, 1, 1), torch.tensor([[0.0, -1.0, 0.0]]).repeat(B, 1)


def test_rigid_and_deterministic():
    pts, up = _walk()
    a = virtual_views(pts, up, 4, 0.2, torch.Generator().manual_seed(3))
    b = virtual_views(pts, up, 4, 0.2, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    rel = pts - pts[..., :1, :]
    d_in = torch.cdist(rel.reshape(-1, 17, 3), rel.reshape(-1, 17, 3))
    d_out = torch.cdist(a[1].reshape(-1, 17, 3), a[1].reshape(-1, 17, 3))
    assert torch.allclose(d_in, d_out, atol=1e-4)  # a rotation: distances kept
    assert not torch.allclose(a[1], rel, atol=1e-2)  # and not the identity


def test_camera_within_range_and_upright():
    r = CameraRange()
    centre = torch.zeros(4000, 3)
    up = torch.tensor([[0.0, -1.0, 0.0]]).repeat(4000, 1)
    rot, pos, focal = draw_cameras(centre, up, torch.Generator().manual_seed(0), r)
    dist = torch.linalg.vector_norm(pos - centre, dim=-1)
    assert dist.min() >= r.distance_m[0] - 1e-4 and dist.max() <= r.distance_m[1] + 1e-4
    assert focal.min() >= r.focal_w[0] - 1e-6 and focal.max() <= r.focal_w[1] + 1e-6
    up_cam = torch.einsum("bij,bj->bi", rot, up)
    assert (up_cam[:, 1] < 0).all()  # the world's up points up in every image (y down)
    elevation = torch.rad2deg(torch.asin(((pos - centre) * up).sum(-1) / dist))
    assert elevation.min() > r.elevation_deg[0] - 0.5 and elevation.max() < r.elevation_deg[1] + 0.5
    cam, x = project(centre[:, None, None], rot, pos, focal)
    assert (x[..., 0].abs() <= 2 * r.offset[0] + 1e-4).all() and (x[..., 1].abs() <= 2 * r.offset[1] + 1e-4).all()
    assert torch.allclose(cam[..., 2].squeeze(), dist * torch.cos(torch.atan(x.squeeze().norm(dim=-1) / 2 / focal)),
                          atol=1e-3)
    azimuth = torch.atan2(pos[:, 2], pos[:, 0])
    assert np.histogram(azimuth.numpy(), bins=8, range=(-math.pi, math.pi))[0].min() > 300  # all round


def test_projection_and_size():
    pts, up = _walk(B=64)
    x, y = virtual_views(pts, up, 4, 0.2, torch.Generator().manual_seed(5))
    size = spread(x).median(dim=1).values
    assert (size > 0.2 * 0.849).all() and (size < 0.2 * 1.151).all()
    # undo the rescale: the 2D is the pinhole projection of the camera-space 3D up to one factor per window
    rot, pos, focal = draw_cameras(pts[:, 4, 0], up, torch.Generator().manual_seed(5))
    cam, x0 = project(pts, rot, pos, focal)
    assert torch.allclose(cam - cam[..., :1, :], y, atol=1e-5)
    k = (x - x[..., :1, :]).norm(dim=-1).sum((1, 2)) / (x0 - x0[..., :1, :]).norm(dim=-1).sum((1, 2))
    assert torch.allclose(x, x0[..., :1, :] + k[:, None, None, None] * (x0 - x0[..., :1, :]), atol=1e-5)
