"""Human3.6M in VideoPose3D's format.

``positions_3d``: subject -> action -> (N, 32 or 17, 3), metres, world frame, 50 fps. The 32-joint
file is reduced to the 17 joints every lifter uses. 2D inputs are the 3D joints projected with each
camera, distortion included ("GT 2D"), or, when given, a VideoPose3D ``positions_2d`` file
(subject -> action -> list of 4 camera arrays (N, 17, 2) in pixels, e.g. CPN detections).
"""

from __future__ import annotations

import lzma
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import Video3DError
from ..untrusted import UnsafePickleError, load_object_npz
from ..geometry import normalize_screen_coordinates, project_to_2d, qinverse, qrot, world_to_camera
from .h36m_cameras import CAMERA_IDS, EXTRINSICS, INTRINSICS

TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")
FPS = 50.0
KEEP_17_OF_32 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)


@dataclass
class Sequence:
    """One (subject, action, camera) take: 2D input in pixels and 3D target in camera space."""

    subject: str
    action: str
    camera: str
    keypoints_2d: np.ndarray  # (N, 17, 2) float32, pixels
    positions_3d: np.ndarray  # (N, 17, 3) float32, metres, camera axes, root-relative
    trajectory: np.ndarray  # (N, 3) float32, root position in camera space (metres)
    res_w: int
    res_h: int
    up: np.ndarray | None = None  # (3,) float32, the world's up direction in this camera's axes


    @property
    def action_group(self) -> str:
        return action_group(self.action)

    def normalized_2d(self) -> np.ndarray:
        return normalize_screen_coordinates(self.keypoints_2d, self.res_w, self.res_h).astype(np.float32)


def action_group(action: str) -> str:
    """'Walking 1' -> 'Walking'; 'WalkDog' stays. The 15 groups of the standard protocol."""
    return action.split(" ")[0]


class DataError(Video3DError, ValueError):
    """The dataset file is missing or not in the expected format (bad input: exit 2)."""

    exit_code = 2


def _read_nested(path: Path, key: str, what: str) -> dict:
    """subject -> action -> value from a VideoPose3D npz, read without running code from the file
    (``video3d.untrusted``: only arrays, dicts, lists and strings are admitted)."""
    if not path.is_file():
        raise DataError(f"no such {what}: {path}")
    try:
        positions = load_object_npz(path, key)
    except UnsafePickleError as exc:
        raise DataError(f"{path} was not loaded: {exc}") from None
    except (KeyError, ValueError, OSError, EOFError, pickle.UnpicklingError) as exc:
        raise DataError(f"{path} is not a VideoPose3D file with '{key}' ({type(exc).__name__}: {exc})") from None
    if not isinstance(positions, dict) or not all(isinstance(s, str) and isinstance(a, dict)
                                                  for s, a in positions.items()):
        raise DataError(f"{path}: '{key}' is not a dict of subjects, each a dict of actions")
    return positions


def load_positions_3d(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """VideoPose3D's 3D file, or a packed copy of it (``video3d data pack``)."""
    from .pack import is_packed, read_packed

    path = Path(path)
    if path.is_file() and is_packed(path):
        try:
            positions = read_packed(path)
        except (ValueError, OSError, EOFError, lzma.LZMAError) as exc:
            raise DataError(f"{path} is not a readable packed dataset ({type(exc).__name__}: {exc})") from None
    else:
        positions = _read_nested(path, "positions_3d", "dataset file")
    out: dict[str, dict[str, np.ndarray]] = {}
    for subject, actions in positions.items():
        out[subject] = {}
        for action, joints in actions.items():
            try:
                joints = np.asarray(joints, dtype=np.float32)
            except (TypeError, ValueError):
                joints = np.zeros(0, np.float32)
            if joints.ndim != 3 or joints.shape[2] != 3 or not len(joints):
                raise DataError(f"{path}: {subject}/{action} is not an (N, 17 or 32, 3) array of joints")
            if joints.shape[1] == 32:
                joints = joints[:, KEEP_17_OF_32]
            elif joints.shape[1] != 17:
                raise DataError(f"{path}: {subject}/{action} has {joints.shape[1]} joints, expected 17 or 32")
            out[subject][action] = joints
    return out


def load_positions_2d(path: str | Path) -> dict[str, dict[str, list[np.ndarray]]]:
    """A VideoPose3D 2D file (``positions_2d``: subject -> action -> 4 camera arrays (N, 17, >=2))."""
    path = Path(path)
    positions = _read_nested(path, "positions_2d", "2D keypoint file")
    out: dict[str, dict[str, list[np.ndarray]]] = {}
    for subject, actions in positions.items():
        out[subject] = {}
        for action, cams in actions.items():
            try:
                arrays = [np.asarray(c, np.float32) for c in cams]
            except (TypeError, ValueError):
                arrays = []
            if not arrays or any(a.ndim != 3 or a.shape[1] != 17 or a.shape[2] < 2 for a in arrays):
                raise DataError(f"{path}: {subject}/{action} is not a list of per-camera (N, 17, 2) arrays")
            out[subject][action] = [a[..., :2] for a in arrays]
    return out


def load_sequences(
    path_3d: str | Path,
    subjects: tuple[str, ...] | list[str],
    actions: list[str] | None = None,
    cameras: list[str] | None = None,
    path_2d: str | Path | None = None,
) -> list[Sequence]:
    """All (subject, action, camera) takes of the given subjects, 2D projected or read from path_2d.

    ``actions`` filters by prefix ('Walk' matches Walking, WalkDog, WalkTogether), as VideoPose3D does;
    ``cameras`` are camera ids or indices 0-3.
    """
    positions = load_positions_3d(path_3d)
    detections = load_positions_2d(path_2d) if path_2d is not None else None
    camera_ids = _camera_ids(cameras)
    sequences = []
    for subject in subjects:
        if subject not in positions:
            raise DataError(f"subject {subject} is not in {path_3d} (has {', '.join(sorted(positions))})")
        for action in sorted(positions[subject]):
            if actions and not any(action.startswith(a) for a in actions):
                continue
            world = positions[subject][action]
            for cam_index, extrinsic in enumerate(EXTRINSICS[subject]):
                if extrinsic["id"] not in camera_ids:
                    continue
                intr = INTRINSICS[extrinsic["id"]]
                cam = world_to_camera(world, np.array(extrinsic["orientation"]),
                                      np.array(extrinsic["translation"], np.float32) / 1000.0)
                if detections is not None:
                    kp2d = detections[subject][action][cam_index]
                    n = min(len(kp2d), len(cam))  # VideoPose3D trims the longer of the two
                    kp2d, cam = kp2d[:n], cam[:n]
                else:
                    kp2d = project_to_2d(cam, intr)
                trajectory = cam[:, 0].copy()
                rel = cam - cam[:, :1]
                sequences.append(Sequence(
                    subject=subject, action=action, camera=extrinsic["id"],
                    keypoints_2d=kp2d.astype(np.float32), positions_3d=rel.astype(np.float32),
                    trajectory=trajectory.astype(np.float32), res_w=intr["res_w"], res_h=intr["res_h"],
                    up=qrot(qinverse(np.array(extrinsic["orientation"])), np.array([0.0, 0.0, 1.0])).astype(np.float32),
                ))
    if not sequences:
        raise DataError("no sequences match the chosen subjects, actions and cameras")
    return sequences


def _camera_ids(cameras: list[str] | None) -> set[str]:
    if not cameras:
        return set(CAMERA_IDS)
    ids = set()
    for cam in cameras:
        if cam in CAMERA_IDS:
            ids.add(cam)
        elif cam.isdigit() and int(cam) < len(CAMERA_IDS):
            ids.add(CAMERA_IDS[int(cam)])
        else:
            raise DataError(f"unknown camera {cam!r}; use an index 0-3 or one of {', '.join(CAMERA_IDS)}")
    return ids
