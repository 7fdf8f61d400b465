"""``PoseSequence``: the one data type that flows through every stage.

One person's keypoints over a whole video: row t is video frame t, always, so a pose is never
attached to the wrong frame. A joint that was not seen is NaN with confidence 0 (never (0, 0));
a frame where the person is absent has every joint missing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .layouts import get_layout


@dataclass(frozen=True, eq=False)
class PoseSequence:
    keypoints: np.ndarray  # (T, J, C) float32: C=2 pixels of the input frame, or C=3 metres
    confidence: np.ndarray  # (T, J) float32 in [0, 1]; 0 exactly where a joint is missing
    fps: float
    layout: str  # "coco17" or "h36m17"
    track_id: int = 0
    frame_size: tuple[int, int] | None = None  # (width, height) of the frame the 2D pixels refer to

    def __post_init__(self) -> None:
        kp = np.asarray(self.keypoints, dtype=np.float32)
        conf = np.asarray(self.confidence, dtype=np.float32)
        object.__setattr__(self, "keypoints", kp)
        object.__setattr__(self, "confidence", conf)
        layout = get_layout(self.layout)
        if kp.ndim != 3 or kp.shape[2] not in (2, 3):
            raise ValueError(f"keypoints must be (T, J, 2 or 3), got {kp.shape}")
        if kp.shape[1] != layout.num_joints:
            raise ValueError(f"layout {self.layout} has {layout.num_joints} joints, keypoints have {kp.shape[1]}")
        if conf.shape != kp.shape[:2]:
            raise ValueError(f"confidence must be (T, J) = {kp.shape[:2]}, got {conf.shape}")
        if np.isinf(kp).any():
            raise ValueError("keypoints contain inf")
        if np.isnan(conf).any() or (conf < 0).any() or (conf > 1).any():
            raise ValueError("confidence must lie in [0, 1]")
        partly = np.isnan(kp).any(axis=-1) & ~np.isnan(kp).all(axis=-1)
        if partly.any():
            raise ValueError("a joint is either fully NaN (missing) or fully finite")
        if (conf[np.isnan(kp[..., 0])] != 0).any():
            raise ValueError("a missing (NaN) joint must have confidence 0")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.frame_size is not None:
            w, h = (int(v) for v in self.frame_size)
            if w <= 0 or h <= 0:
                raise ValueError(f"frame size must be positive, got {self.frame_size}")
            object.__setattr__(self, "frame_size", (w, h))

    @property
    def num_frames(self) -> int:
        return self.keypoints.shape[0]

    @property
    def num_joints(self) -> int:
        return self.keypoints.shape[1]

    @property
    def dims(self) -> int:
        return self.keypoints.shape[2]

    @property
    def missing(self) -> np.ndarray:
        """(T, J) True where a joint is missing."""
        return np.isnan(self.keypoints[..., 0])

    @property
    def valid(self) -> np.ndarray:
        """(T,) True on frames where at least one joint is present."""
        return ~self.missing.all(axis=1)

    def with_(self, **changes) -> "PoseSequence":
        return replace(self, **changes)

    @classmethod
    def empty(cls, num_frames: int, layout: str, dims: int, fps: float, **kw) -> "PoseSequence":
        j = get_layout(layout).num_joints
        return cls(np.full((num_frames, j, dims), np.nan, np.float32), np.zeros((num_frames, j), np.float32),
                   fps, layout, **kw)
