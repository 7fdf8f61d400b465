"""Side-by-side rendering with OpenCV: the input frame with the 2D skeletons | the 3D skeletons.

The 3D panel is a square as tall as the input frame, drawn by projecting the skeletons (in the upright
world frame of ``video3d.world``) through a fixed virtual camera (azimuth, elevation) looking at the
scene, over a floor grid at the feet. The
scene's bounds are fixed for the whole video so the view never jumps. Right limbs are red, left limbs
blue, the spine gold, in both panels; each person's track id is written by their head.
OpenCV drawing is used rather than matplotlib because it renders a 720p frame pair in a few
milliseconds (benchmarks/render_speed.py measures both).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .layouts import get_layout

# BGR
RIGHT = (60, 60, 230)
LEFT = (230, 140, 40)
MIDDLE = (40, 190, 230)
GRID = (205, 205, 205)
BACKGROUND = (250, 250, 250)

def _colour(layout, edge) -> tuple[int, int, int]:
    side = layout.side_of_edge(edge)
    return LEFT if side > 0 else RIGHT if side < 0 else MIDDLE


@dataclass
class Scene3D:
    """Poses in the world frame (z up, metres, floor at z = 0 unless rebased otherwise): (P, T, 17, 3),
    NaN where invalid. Build it with ``video3d.world.to_world``."""

    poses: np.ndarray
    track_ids: list[int]

    @property
    def floor(self) -> float:
        """Height of the floor grid: 0, or the lowest feet when the poses were not rebased onto a floor."""
        feet = self.poses[..., [3, 6], 2]
        feet = feet[np.isfinite(feet)]
        return float(min(0.0, np.percentile(feet, 5))) if len(feet) else 0.0


class SideBySideRenderer:
    """Draws frame pairs. Create once per video (it fixes the 3D view), then call ``render(frame, t)``."""

    def __init__(self, frame_size: tuple[int, int], keypoints_2d: np.ndarray, layout_2d: str,
                 scene: Scene3D | None, azimuth: float = 45.0, elevation: float = 15.0,
                 panel_size: int | None = None):
        self.width, self.height = frame_size
        self.kp2d = keypoints_2d  # (P, T, J, 2) pixels, NaN where missing
        self.layout2d = get_layout(layout_2d)
        self.layout3d = get_layout("h36m17")
        self.scene = scene
        self.panel = panel_size or self.height
        self.thickness = max(2, round(self.height / 270))
        self.font_scale = max(0.5, self.height / 1080)
        self._setup_view(azimuth, elevation)
        self._grid = self._draw_grid()

    @property
    def output_size(self) -> tuple[int, int]:
        return (self.width + (self.panel if self.scene is not None else 0), self.height)

    # --- 3D view -----------------------------------------------------------------------------
    def _setup_view(self, azimuth: float, elevation: float) -> None:
        poses = self.scene.poses if self.scene is not None else np.zeros((1, 1, 1, 3))
        finite = poses[np.isfinite(poses).all(-1)]
        if len(finite) == 0:
            finite = np.zeros((1, 3), np.float32)
        lo, hi = finite.min(0), finite.max(0)
        self.floor_z = self.scene.floor if self.scene is not None else 0.0
        centre = (lo + hi) / 2
        centre[2] = self.floor_z
        self.extent = max(1.0, float(max(hi[0] - lo[0], hi[1] - lo[1], hi[2] - self.floor_z)) * 0.6 + 0.3)
        self.target = centre + np.array([0, 0, min(hi[2] - self.floor_z, 2.0) * 0.45], np.float32)
        az, el = np.radians(azimuth), np.radians(elevation)
        forward = -np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])  # from eye to target
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        self.rotation = np.stack([right, -up, forward]).astype(np.float32)  # world -> view (x right, y down, z ahead)
        self.distance = self.extent * 3.2
        self.eye = self.target - forward * self.distance
        self.focal = self.panel * self.distance / (2.4 * self.extent)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World (display frame) points (..., 3) -> panel pixels (..., 2) and depth (...)."""
        v = (points - self.eye) @ self.rotation.T
        z = np.maximum(v[..., 2], 1e-3)
        uv = self.focal * v[..., :2] / z[..., None] + self.panel / 2
        return uv, z

    def _draw_grid(self) -> np.ndarray:
        img = np.full((self.panel, self.panel, 3), BACKGROUND, np.uint8)
        half = self.extent
        step = _nice_step(2 * half / 8)
        cx, cy = self.target[0], self.target[1]
        ticks = np.arange(-np.ceil(half / step) * step, half + 1e-6, step)
        for t in ticks:
            fz = self.floor_z
            for a, b in (((cx + t, cy - half, fz), (cx + t, cy + half, fz)), ((cx - half, cy + t, fz), (cx + half, cy + t, fz))):
                uv, _ = self.project(np.array([a, b], np.float32))
                cv2.line(img, _pt(uv[0]), _pt(uv[1]), GRID, 1, cv2.LINE_AA)
        return img

    def render_3d(self, t: int) -> np.ndarray:
        img = self._grid.copy()
        if self.scene is None:
            return img
        items = []  # (depth, kind, data) drawn far to near
        for p, pose in enumerate(self.scene.poses[:, t]):
            if not np.isfinite(pose).all():
                continue
            uv, z = self.project(pose)
            for edge in self.layout3d.edges:
                a, b = edge
                items.append(((z[a] + z[b]) / 2, "bone", (uv[a], uv[b], _colour(self.layout3d, edge))))
            shadow = pose.copy()
            shadow[:, 2] = self.floor_z
            suv, sz = self.project(shadow)
            for a, b in self.layout3d.edges:
                items.append((1e9, "shadow", (suv[a], suv[b])))
            items.append((z[10] - 1e-3, "label", (uv[10], self.scene.track_ids[p])))
        items.sort(key=lambda it: -it[0])
        th = max(2, round(self.panel / 180))
        for _, kind, data in items:
            if kind == "shadow":
                cv2.line(img, _pt(data[0]), _pt(data[1]), (225, 225, 225), th + 2, cv2.LINE_AA)
            elif kind == "bone":
                cv2.line(img, _pt(data[0]), _pt(data[1]), data[2], th, cv2.LINE_AA)
                cv2.circle(img, _pt(data[1]), th, (60, 60, 60), -1, cv2.LINE_AA)
            else:
                self._label(img, data[0] + np.array([0, -3 * th]), data[1])
        return img

    # --- 2D panel ----------------------------------------------------------------------------
    def draw_2d(self, frame: np.ndarray, t: int) -> np.ndarray:
        img = frame.copy()
        for p in range(self.kp2d.shape[0]):
            kp = self.kp2d[p, t]
            seen = np.isfinite(kp[:, 0])
            if not seen.any():
                continue
            for edge in self.layout2d.edges:
                a, b = edge
                if seen[a] and seen[b]:
                    cv2.line(img, _pt(kp[a]), _pt(kp[b]), _colour(self.layout2d, edge), self.thickness, cv2.LINE_AA)
            for j in np.nonzero(seen)[0]:
                cv2.circle(img, _pt(kp[j]), self.thickness + 1, (255, 255, 255), -1, cv2.LINE_AA)
            if self.scene is not None and p < len(self.scene.track_ids):
                top = kp[seen][np.argmin(kp[seen][:, 1])]
                self._label(img, top + np.array([0, -4 * self.thickness]), self.scene.track_ids[p])
        return img

    def _label(self, img: np.ndarray, at: np.ndarray, track_id: int) -> None:
        text = f"#{track_id}"
        scale = self.font_scale * 0.8
        (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
        org = (int(at[0] - w / 2), int(at[1]))
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 4, cv2.LINE_AA)
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (30, 30, 30), 2, cv2.LINE_AA)

    def render(self, frame: np.ndarray, t: int) -> np.ndarray:
        left = self.draw_2d(frame, t)
        if self.scene is None:
            return left
        right = self.render_3d(t)
        return np.concatenate([left, right], axis=1)


def _pt(uv: np.ndarray) -> tuple[int, int]:
    return int(round(float(uv[0]))), int(round(float(uv[1])))


def _nice_step(x: float) -> float:
    exp = 10 ** np.floor(np.log10(x))
    for m in (1, 2, 2.5, 5, 10):
        if m * exp >= x:
            return float(m * exp)
    return float(10 * exp)
