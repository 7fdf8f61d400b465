"""Side-by-side rendering with OpenCV: the input frame with the 2D skeletons | the 3D skeletons.

The 3D panel is a square as tall as the input frame, drawn by projecting the skeletons (in the upright
world frame of ``video3d.world``: x the camera's right, y away from it, z up) through a virtual camera
(azimuth, elevation) looking at the scene, over a floor grid at the feet. By default it stands on the video
camera's side (azimuth -60: the camera's own direction, -90, turned 30 degrees so depth shows), so left and
right, near and far read as in the video; the panel says where it looks from and the grid's spacing. The
scene's bounds are fixed for the whole video so the view never jumps. Right limbs are red, left limbs
blue, the spine gold, in both panels, for the first person; each further person has a colour of their own (left
lighter than right), the same in both panels, and their track id on a label of that colour by their head. A
legend (the frame and its time, each person's right and left colours) sits in the 3D panel's corner.
OpenCV drawing is used rather than matplotlib because it renders a 720p frame pair in a few
milliseconds (benchmarks/render_speed.py measures both).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import cv2
import numpy as np

from .layouts import get_layout
from .options import VIEW_AZIMUTH, VIEW_ELEVATION

# BGR
RIGHT = (60, 60, 230)
LEFT = (230, 140, 40)
MIDDLE = (40, 190, 230)
GRID = (205, 205, 205)
BACKGROUND = (250, 250, 250)
# One palette per person (the same in both panels), by the order of the people: (right side, left side, spine and
# head, label). The first is the classic red right / blue left; the others tell left from right by shade (dark
# right, light left) within a hue of their own.
PALETTES = (
    (RIGHT, LEFT, MIDDLE, (60, 60, 60)),
    ((40, 120, 20), (120, 220, 110), (60, 160, 60), (40, 120, 20)),  # green
    ((130, 30, 120), (230, 150, 220), (180, 80, 170), (130, 30, 120)),  # purple
    ((0, 100, 200), (90, 190, 255), (30, 140, 230), (0, 100, 200)),  # orange
    ((120, 90, 0), (230, 200, 110), (170, 140, 40), (120, 90, 0)),  # teal
    ((30, 30, 120), (140, 140, 230), (70, 70, 170), (30, 30, 120)),  # brown-red
)


def palette(person: int) -> tuple:
    return PALETTES[person % len(PALETTES)]


def _colour(layout, edge, person: int = 0) -> tuple[int, int, int]:
    right, left, middle, _ = palette(person)
    side = layout.side_of_edge(edge)
    return left if side > 0 else right if side < 0 else middle


@dataclass
class Scene3D:
    """Poses in the world frame (z up, metres, floor at z = 0 unless rebased otherwise): (P, T, 17, 3),
    NaN where invalid, and for a joint not seen (a person cut by the frame's edge: the upper body alone is
    drawn). Build it with ``video3d.world.to_world``."""

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
                 scene: Scene3D | None, azimuth: float = VIEW_AZIMUTH, elevation: float = VIEW_ELEVATION,
                 panel_size: int | None = None, fps: float = 25.0):
        self.width, self.height = frame_size
        self.kp2d = keypoints_2d  # (P, T, J, 2) pixels, NaN where missing
        self.layout2d = get_layout(layout_2d)
        self.layout3d = get_layout("h36m17")
        self.scene = scene
        self.panel = panel_size or self.height
        self.thickness = max(2, round(self.height / 270))
        self.font_scale = max(0.5, self.height / 1080)
        self.fps = fps
        self.azimuth, self.elevation = azimuth, elevation
        self._setup_view(azimuth, elevation)

    @property
    def output_size(self) -> tuple[int, int]:
        return (self.width + (self.panel if self.scene is not None else 0), self.height)

    # --- 3D view -----------------------------------------------------------------------------
    def _setup_view(self, azimuth: float, elevation: float) -> None:
        """A camera that follows the group: aimed each frame at the people's smoothed centre, moving in and out
        with the group's smoothed spread; the floor grid is fixed in the world, so walking shows as the floor
        passing by."""
        poses = self.scene.poses if self.scene is not None else np.full((1, 1, 17, 3), np.nan)
        T = poses.shape[1]
        self.floor_z = self.scene.floor if self.scene is not None else 0.0
        roots = poses[:, :, 0]  # (P, T, 3): NaN where the person has no 3D
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            centre = np.nanmean(roots, axis=0)  # (T, 3): the group's centre per frame
        seen = np.isfinite(centre).all(-1)
        if seen.any():
            idx = np.arange(T)
            centre = np.stack([np.interp(idx, idx[seen], centre[seen, k]) for k in range(3)], -1)
            centre = _moving_average(centre, max(1, int(self.fps)))  # a steady camera
            spread = np.linalg.norm((poses[..., :2] - centre[None, :, None, :2]), axis=-1)  # (P, T, 17)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                reach = np.nanmax(spread, axis=(0, 2))  # (T,) how far the group reaches from its centre
            reach = np.interp(idx, idx[seen], reach[seen])
            # a smooth zoom that never shows less than the frame needs: the running maximum over the averaging
            # window, then averaged (a plain average cut off a person walking out at the side of the view)
            reach = _moving_average(_moving_max(reach, max(1, int(self.fps)))[:, None], max(1, int(self.fps)))[:, 0]
            height = float(np.clip(np.nanmax(poses[..., 2]) - self.floor_z, 1.0, 2.5))
        else:
            centre, reach, height = np.zeros((T, 3)), np.full(T, 0.5), 1.8
        self.extents = np.maximum(reach, height / 2) + 0.25  # (T,) half-size to show around the centre
        self.extent = float(self.extents.max())
        self.targets = np.column_stack([centre[:, 0], centre[:, 1], np.full(T, self.floor_z + height * 0.45)])
        az, el = np.radians(azimuth), np.radians(elevation)
        self.forward = -np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])  # eye to target
        right = np.cross(self.forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, self.forward)
        self.rotation = np.stack([right, -up, self.forward]).astype(np.float32)  # world -> view (x right, y down)
        self.distances = self.extents * 4.0  # the camera moves in and out: the extent fills ~80% of the panel
        self.focal = (self.panel / 2) * 4.0 / 1.2

    def project(self, points: np.ndarray, t: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """World points (..., 3) -> panel pixels (..., 2) and depth (...), for frame t's camera."""
        t = min(t, len(self.targets) - 1)
        eye = self.targets[t] - self.forward * self.distances[t]
        v = (points - eye) @ self.rotation.T
        z = np.maximum(v[..., 2], 1e-3)
        uv = self.focal * v[..., :2] / z[..., None] + self.panel / 2
        return uv, z

    def _draw_grid(self, t: int) -> np.ndarray:
        img = np.full((self.panel, self.panel, 3), BACKGROUND, np.uint8)
        half = self.extents[min(t, len(self.extents) - 1)] * 1.6
        step = _nice_step(2 * self.extent / 8)  # one grid spacing for the whole video
        cx, cy = self.targets[min(t, len(self.targets) - 1), :2]
        fz = self.floor_z
        xs = np.arange(np.floor((cx - half) / step), np.ceil((cx + half) / step) + 1) * step  # fixed in the world
        ys = np.arange(np.floor((cy - half) / step), np.ceil((cy + half) / step) + 1) * step
        for x in xs:
            self._line(img, t, (x, ys[0], fz), (x, ys[-1], fz))
        for y in ys:
            self._line(img, t, (xs[0], y, fz), (xs[-1], y, fz))
        self._caption(img)
        if self.scene is not None:
            self._legend(img, t)
        return img

    def _line(self, img: np.ndarray, t: int, a, b) -> None:
        uv, _ = self.project(np.array([a, b], np.float32), t)
        cv2.line(img, _pt(uv[0]), _pt(uv[1]), GRID, 1, cv2.LINE_AA)

    def render_3d(self, t: int) -> np.ndarray:
        img = self._draw_grid(t)
        if self.scene is None:
            return img
        items = []  # (depth, kind, data) drawn far to near
        for p, pose in enumerate(self.scene.poses[:, t]):
            seen = np.isfinite(pose).all(-1)  # (17,): joints not seen are NaN (left out)
            if not seen[0]:
                continue
            pose = np.nan_to_num(pose)  # the unseen joints' zeros are projected, never drawn
            uv, z = self.project(pose, t)
            edges = [edge for edge in self.layout3d.edges if seen[edge[0]] and seen[edge[1]]]
            for edge in edges:
                a, b = edge
                items.append(((z[a] + z[b]) / 2, "bone", (uv[a], uv[b], _colour(self.layout3d, edge, p))))
            shadow = pose.copy()
            shadow[:, 2] = self.floor_z
            suv, _ = self.project(shadow, t)
            for a, b in edges:
                items.append((1e9, "shadow", (suv[a], suv[b])))
            top = 10 if seen[10] else int(np.nonzero(seen)[0][np.argmax(pose[seen, 2])])  # the head, else the highest
            items.append((z[top] - 1e-3, "label", (uv[top], self.scene.track_ids[p], p)))
        items.sort(key=lambda it: -it[0])
        th = max(2, round(self.panel / 180))
        for _, kind, data in items:
            if kind == "shadow":
                cv2.line(img, _pt(data[0]), _pt(data[1]), (225, 225, 225), th + 2, cv2.LINE_AA)
            elif kind == "bone":
                cv2.line(img, _pt(data[0]), _pt(data[1]), data[2], th, cv2.LINE_AA)
                cv2.circle(img, _pt(data[1]), th, (60, 60, 60), -1, cv2.LINE_AA)
            else:
                self._label(img, data[0] + np.array([0, -3 * th]), data[1], data[2])
        return img

    def view_caption(self) -> str:
        """Where the 3D panel looks from, relative to the video's camera, and the floor grid's spacing."""
        turn = (self.azimuth + 90.0 + 180.0) % 360.0 - 180.0  # 0: the camera's own direction
        side = "from the camera" if abs(turn) < 0.5 else \
            f"from the camera, {abs(turn):.0f} deg {'right' if turn > 0 else 'left'}"
        step = _nice_step(2 * self.extent / 8)
        return f"view {side}, {self.elevation:.0f} deg up; grid {step:g} m"

    def _caption(self, img: np.ndarray) -> None:
        scale = self.font_scale * 0.7
        org = (int(self.panel * 0.02), int(self.panel * 0.02) + int(22 * scale))
        cv2.putText(img, self.view_caption(), org, cv2.FONT_HERSHEY_SIMPLEX, scale, (110, 110, 110), 1, cv2.LINE_AA)

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
                    cv2.line(img, _pt(kp[a]), _pt(kp[b]), _colour(self.layout2d, edge, p), self.thickness,
                             cv2.LINE_AA)
            for j in np.nonzero(seen)[0]:
                cv2.circle(img, _pt(kp[j]), self.thickness + 1, (255, 255, 255), -1, cv2.LINE_AA)
            if self.scene is not None and p < len(self.scene.track_ids):
                top = kp[seen][np.argmin(kp[seen][:, 1])]
                self._label(img, top + np.array([0, -4 * self.thickness]), self.scene.track_ids[p], p)
        return img

    def _label(self, img: np.ndarray, at: np.ndarray, track_id: int, person: int = 0) -> None:
        """The track id in white on a label of the person's colour, centred above ``at``; readable at 720p."""
        text = f"#{track_id}"
        scale = max(0.6, self.font_scale * 0.9)
        thick = max(1, round(2 * scale))
        (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        pad = max(2, h // 4)
        x0, y1 = int(at[0] - w / 2), int(at[1])
        cv2.rectangle(img, (x0 - pad, y1 - h - pad), (x0 + w + pad, y1 + base), palette(person)[3], -1)
        cv2.putText(img, text, (x0, y1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)

    def _legend(self, img: np.ndarray, t: int) -> None:
        """Bottom left of the 3D panel: the frame and its time, and each person's right / left colours."""
        scale = self.font_scale * 0.7
        line = int(30 * scale) + 4
        x, y = int(self.panel * 0.02), self.panel - int(self.panel * 0.02)
        rows = [(f"frame {t + 1}/{len(self.targets)}, {t / self.fps:.2f} s", None)]
        rows += [(f"#{i}", p) for p, i in enumerate(self.scene.track_ids)][:len(PALETTES)]
        for text, p in reversed(rows):
            if p is None:
                cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (110, 110, 110), 1, cv2.LINE_AA)
            else:
                right, left, _, _ = palette(p)
                seg = int(40 * scale)
                (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
                cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (80, 80, 80), 1, cv2.LINE_AA)
                cx = x + w + 8
                for colour, name in ((right, "right"), (left, "left")):
                    cv2.line(img, (cx, y - line // 3), (cx + seg, y - line // 3), colour, max(2, line // 6),
                             cv2.LINE_AA)
                    cv2.putText(img, name, (cx + seg + 4, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (110, 110, 110), 1,
                                cv2.LINE_AA)
                    (nw, _), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
                    cx += seg + nw + 14
            y -= line

    def render(self, frame: np.ndarray, t: int) -> np.ndarray:
        left = self.draw_2d(frame, t)
        if self.scene is None:
            return left
        right = self.render_3d(t)
        return np.concatenate([left, right], axis=1)


def _pt(uv: np.ndarray) -> tuple[int, int]:
    return int(round(float(uv[0]))), int(round(float(uv[1])))


def _moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average along axis 0 with the ends held."""
    if window <= 1 or len(x) < 2:
        return x
    half = window // 2
    padded = np.concatenate([np.repeat(x[:1], half, 0), x, np.repeat(x[-1:], half, 0)])
    kernel = np.ones(2 * half + 1) / (2 * half + 1)
    return np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(x.shape[1])], -1)


def _moving_max(x: np.ndarray, window: int) -> np.ndarray:
    """Centred running maximum of (T,) over ``window`` frames (as ``_moving_average``'s, the ends held)."""
    if window <= 1 or len(x) < 2:
        return x
    half = window // 2
    padded = np.concatenate([np.repeat(x[:1], half), x, np.repeat(x[-1:], half)])
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1).max(-1)


def _nice_step(x: float) -> float:
    exp = 10 ** np.floor(np.log10(x))
    for m in (1, 2, 2.5, 5, 10):
        if m * exp >= x:
            return float(m * exp)
    return float(10 * exp)
