"""Human3.6M in VideoPose3D's format, and its packed copy.

``positions_3d``: subject -> action -> (N, 32 or 17, 3), metres, world frame, 50 fps. The 32-joint
file is reduced to the 17 joints every lifter uses. 2D inputs are the 3D joints projected with each
camera, distortion included ("GT 2D"), or, when given, a VideoPose3D ``positions_2d`` file
(subject -> action -> list of 4 camera arrays (N, 17, 2) in pixels, e.g. CPN detections).

The packed copy (``video3d data pack``, ``video3d.data.pack``), quick to move to a training machine: every
take's (N, 17, 3) positions rounded to 0.1 mm integers and stored as the first frame and the differences along
time (small numbers at 50 fps, so int16 almost always), in an npz of plain integer arrays (no pickle) compressed
with xz: about a fifth of VideoPose3D's 91 MB file, every coordinate within 0.05 mm. ``load_positions_3d``
reads it directly, so training needs no unpacking.
"""

from __future__ import annotations

import io
import json
import lzma
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import Video3DError
from ..untrusted import MAX_NPZ_BYTES, TooLargeError, UnsafePickleError, check_npz, load_object_npz
from ..geometry import normalize_screen_coordinates, project_to_2d, qinverse, qrot, world_to_camera
from .h36m_cameras import CAMERA_IDS, EXTRINSICS, INTRINSICS

TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")
FPS = 50.0
KEEP_17_OF_32 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)

FORMAT = "video3d.h36m-packed.v1"
UNIT_M = 1e-4  # 0.1 mm
XZ_MAGIC = b"\xfd7zXZ\x00"
MAX_UNPACKED_BYTES = MAX_NPZ_BYTES  # a packed file may not inflate past this (an xz bomb is refused; the real
# one, all of Human3.6M's 17 joints, inflates to about 0.1 GB)


def is_packed(path: str | Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(XZ_MAGIC)) == XZ_MAGIC


def encode(positions: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """subject -> action -> (N, J, 3) metres  ->  {"S1/Walking 1": deltas (N, J, 3) int16/int32, "index": json}."""
    arrays, index = {}, []
    for s, subject in enumerate(sorted(positions)):
        for a, action in enumerate(sorted(positions[subject])):
            units = np.rint(np.asarray(positions[subject][action], np.float64) / UNIT_M).astype(np.int64)
            deltas = np.diff(units, axis=0)  # steps along time: (N-1, J, 3)
            small = np.iinfo(np.int16)
            fits = not deltas.size or (deltas.min() >= small.min and deltas.max() <= small.max)
            key = f"t{s:02d}_{a:03d}"
            arrays[key + "_first"] = units[0].astype(np.int32)  # frame 0 as it is: (J, 3)
            arrays[key] = deltas.astype(np.int16 if fits else np.int32)
            index.append({"subject": subject, "action": action, "key": key})
    arrays["index"] = np.frombuffer(json.dumps({"format": FORMAT, "unit_m": UNIT_M, "takes": index}).encode(),
                                    np.uint8)
    return arrays


def decode(arrays, declared: dict | None = None) -> dict[str, dict[str, np.ndarray]]:
    """``declared``: the npz's declared (shape, dtype) per key (``untrusted.check_npz``); with it, the positions
    every take names are counted before any is built (one array named by many takes is many arrays)."""
    meta = json.loads(bytes(np.asarray(arrays["index"], np.uint8)).decode())
    if meta.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} file")
    if not isinstance(meta.get("takes"), list) or not all(isinstance(t, dict) for t in meta["takes"]):
        raise ValueError("its index has no list of takes")
    if declared is not None:
        shapes = [declared.get(str(t.get("key")), ((0,), None))[0] for t in meta["takes"]]
        # float32 positions out: the deltas' frames and frame 0
        total = sum(4.0 * (shape[0] + 1) * np.prod(shape[1:], dtype=np.float64) for shape in shapes)
        if total > MAX_UNPACKED_BYTES:
            raise TooLargeError(f"its {len(shapes)} takes name {total / (1 << 30):.3g} GiB of positions, more than "
                                f"the {MAX_UNPACKED_BYTES / (1 << 30):.3g} GiB a dataset may hold")
    out: dict[str, dict[str, np.ndarray]] = {}
    for take in meta["takes"]:
        first, deltas = np.asarray(arrays[take["key"] + "_first"]), np.asarray(arrays[take["key"]])
        if first.dtype.kind != "i" or deltas.dtype.kind != "i" or deltas.ndim != 3 or first.shape != deltas.shape[1:]:
            raise ValueError(f"{take['subject']}/{take['action']} is not a (J, 3) + (N-1, J, 3) integer pair")
        units = np.concatenate([first[None].astype(np.int64), deltas.astype(np.int64)])  # (N, J, 3)
        positions = np.cumsum(units, axis=0) * float(meta["unit_m"])
        out.setdefault(str(take["subject"]), {})[str(take["action"])] = positions.astype(np.float32)
    return out


def read_packed(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """A packed file's positions (plain arrays only: ``allow_pickle=False``)."""
    decompressor = lzma.LZMADecompressor()
    with open(path, "rb") as f:
        raw = decompressor.decompress(f.read(), max_length=MAX_UNPACKED_BYTES)
    if not decompressor.eof and len(raw) >= MAX_UNPACKED_BYTES:
        raise TooLargeError(f"it inflates past {MAX_UNPACKED_BYTES / (1 << 30):.3g} GiB, more than a dataset may hold")
    try:
        declared = check_npz(io.BytesIO(raw))
        with np.load(io.BytesIO(raw), allow_pickle=False) as arrays:
            return decode(arrays, declared)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"a damaged packed file ({type(exc).__name__}: {exc})") from None


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


def read_nested(path: Path, key: str, what: str) -> dict:
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
    path = Path(path)
    if path.is_file() and is_packed(path):
        try:
            positions = read_packed(path)
        except (ValueError, OSError, EOFError, lzma.LZMAError) as exc:
            raise DataError(f"{path} is not a readable packed dataset ({type(exc).__name__}: {exc})") from None
    else:
        positions = read_nested(path, "positions_3d", "dataset file")
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
    positions = read_nested(path, "positions_2d", "2D keypoint file")
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
