"""HumanEva-I in VideoPose3D's format (``data_3d_humaneva15.npz``, ``data_2d_humaneva15_gt.npz``): a cross-dataset
check of lifters trained on Human3.6M (other people, cameras, a lab; GAST-Net's second benchmark).

The files hold 15 joints per frame (VideoPose3D's ``humaneva15`` layout, ``HE15`` below): 3D in the world
(metres), 2D per camera in pixels of 640x480 frames (the three colour cameras), at 60 fps, in chunks split
where a take's motion capture is lost. Our lifters take Human3.6M-17 2D; ``to_h36m17`` builds it: 13 joints are
the same, the spine is the pelvis-thorax midpoint and the neck/nose joint is put between the thorax and the
head as Human3.6M's skeleton has it (``NOSE_FROM_THORAX``), so the comparison is on the 14 joints HumanEva
has (``H36M_OF_HE15``; not the spine or the neck/nose). The world 3D has no camera: the protocol measure is
P-MPJPE (per-frame similarity Procrustes), which needs none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .h36m import DataError, read_nested

HE15 = ("pelvis", "thorax", "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow",
        "right_wrist", "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle", "head")
# HumanEva-15 joint -> Human3.6M-17 joint
H36M_OF_HE15 = (0, 8, 11, 12, 13, 14, 15, 16, 4, 5, 6, 1, 2, 3, 10)
NOSE_FROM_THORAX = 0.5  # Human3.6M's neck/nose joint lies about half-way from the thorax to the head (0.52 on S1)
FRAME_SIZE = (640, 480)
FPS = 60.0
TEST_SUBJECTS = ("Validate/S1", "Validate/S2", "Validate/S3")
TEST_ACTIONS = ("Walking", "Jog", "Box")  # VideoPose3D's and GAST-Net's HumanEva-I protocol


@dataclass
class Take:
    subject: str
    action: str  # e.g. "Walking 1 chunk0"
    camera: int
    keypoints_2d: np.ndarray  # (N, 15, 2) pixels
    positions_3d: np.ndarray  # (N, 15, 3) world, metres

    @property
    def action_group(self) -> str:
        return self.action.split(" ")[0]


def to_h36m17(he15: np.ndarray) -> np.ndarray:
    """HumanEva-15 joints (..., 15, C) -> Human3.6M-17 (..., 17, C), spine and neck/nose made as above."""
    he15 = np.asarray(he15)
    out = np.zeros(he15.shape[:-2] + (17, he15.shape[-1]), he15.dtype)
    out[..., list(H36M_OF_HE15), :] = he15
    out[..., 7, :] = (out[..., 0, :] + out[..., 8, :]) / 2
    out[..., 9, :] = out[..., 8, :] + NOSE_FROM_THORAX * (out[..., 10, :] - out[..., 8, :])
    return out


def load_takes(path_3d: str | Path, path_2d: str | Path, subjects=TEST_SUBJECTS,
               actions=TEST_ACTIONS) -> list[Take]:
    """Every chunk of ``actions`` (name prefixes) of ``subjects``, once per camera, 2D and 3D frame-aligned."""
    pos3d = read_nested(Path(path_3d), "positions_3d", "HumanEva 3D file")
    pos2d = read_nested(Path(path_2d), "positions_2d", "HumanEva 2D file")
    missing = [s for s in subjects if s not in pos3d or s not in pos2d]
    if missing:
        raise DataError(f"{path_3d}: no subject {', '.join(missing)}; it has {', '.join(sorted(pos3d))}")
    takes = []
    for subject in subjects:
        for action in sorted(pos3d[subject]):
            if not any(action.startswith(a) for a in actions) or action not in pos2d[subject]:
                continue
            p3 = np.asarray(pos3d[subject][action], np.float32)
            if p3.ndim != 3 or p3.shape[1:] != (15, 3):
                raise DataError(f"{path_3d}: {subject} {action} is {p3.shape}, not (N, 15, 3)")
            for cam, p2 in enumerate(pos2d[subject][action]):
                p2 = np.asarray(p2, np.float32)
                if p2.shape != p3.shape[:2] + (2,):
                    raise DataError(f"{path_2d}: {subject} {action} camera {cam} is {p2.shape}, not {p3.shape[:2] + (2,)}")
                takes.append(Take(subject, action, cam, p2, p3))
    if not takes:
        raise DataError(f"no HumanEva take of {', '.join(actions)} for {', '.join(subjects)}")
    return takes
