"""``PoseResult`` (all selected people of one video, 2D and optionally 3D) and its npz contract.

npz keys (documented in README.md):
  keypoints_2d  float32 (P, T, J, 3)  x, y in pixels of the input frame and confidence; x, y NaN where missing
  layout_2d     str                   "coco17" (YOLO) or "h36m17"
  keypoints_3d  float32 (P, T, 17, 3) H36M-17, metres, camera axes (x right, y down, z away), pelvis at origin;
                                      NaN in a frame without 3D and for a joint not seen (``joints_seen``)
  joints_seen   bool (P, T, 17)       the joint's 3D is estimated from what was seen (its 2D, or a gap of at most
                                      ``max_gap`` in it); False: it was not seen for longer (cut off by the frame's
                                      edge, hidden, below the detector's confidence), so it is left out
  valid         bool (P, T)           a 3D pose exists for the frame (seen, or bridged by a short-gap interpolation)
  interpolated  bool (P, T)           the person was not detected in the frame; the 3D is bridged over a short gap
  track_ids     int (P,)              tracker ids
  fps           float
  frame_size    int (2,)              (width, height)
  lifter        str                   the lifter and its weights ("" before lifting)
  input_scale   float32 (P,)          the factor each person's 2D was scaled by (about the pelvis) before lifting,
                                      to the typical size of the lifter's training input; 1: as detected
  swaps_fixed   int64 (P,)            frames of each person whose left/right labels were exchanged before lifting
                                      (``video3d.repair``); 0: as detected
  labels_swapped bool (P, T, 3)       per frame, whether the left/right labels of the body, the legs, the arms were
                                      exchanged before lifting (keypoints_2d keeps the detector's; the rendered 2D
                                      panel draws them exchanged, as lifted)
  source        str                   the input video's file name
  timestamps    float64 (T,)          only for a variable-frame-rate video: each frame's time in seconds from the first
and, once placed in the world frame (``pipeline.place``; see video3d.world):
  keypoints_3d_world float32 (P, T, 17, 3) metres, z up, people on the floor (z = 0), at their positions; NaN as
                                           in keypoints_3d
  root_positions     float32 (P, T, 3)     approximate camera-space root positions used for the placement
  world_rotation     float32 (3, 3)        world = world_rotation @ camera
  trajectory         bool                  people move through the scene (else each stays at their median place)
  rebase             str                   how the floor was set: sequence, frame or none
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError
from .io import AtomicPath
from .layouts import get_layout
from .sequence import PoseSequence
from .untrusted import TooLargeError, check_npz
from .world import WorldFrame


@dataclass
class PoseResult:
    persons_2d: list[PoseSequence]  # pixels, coco17 or h36m17, one per selected person
    fps: float
    frame_size: tuple[int, int]
    source: str = ""
    persons_3d: list[PoseSequence] | None = None  # h36m17, metres, camera axes, root-relative
    interpolated: np.ndarray | None = None  # (P, T) bool
    lifter: str = ""
    input_scale: np.ndarray | None = None  # (P,) float: see the npz keys above
    swaps_fixed: np.ndarray | None = None  # (P,) int: see the npz keys above
    labels_swapped: np.ndarray | None = None  # (P, T, 3) bool: see the npz keys above
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    world: WorldFrame | None = None  # the people in an upright world frame (pipeline.place)
    timestamps: np.ndarray | None = None  # (T,) seconds from the first frame; only for variable frame rates
    warnings: list[str] = field(default_factory=list)  # one line each: what the user should know (not saved)

    def frame_times(self) -> np.ndarray:
        """(T,) seconds from the first frame: the timestamps where the frame rate varies, else frame / fps."""
        if self.timestamps is not None and len(self.timestamps) == self.num_frames:
            return np.asarray(self.timestamps, np.float64)
        return np.arange(self.num_frames) / self.fps

    @property
    def num_frames(self) -> int:
        return self.persons_2d[0].num_frames if self.persons_2d else 0

    @property
    def num_persons(self) -> int:
        return len(self.persons_2d)

    @property
    def track_ids(self) -> np.ndarray:
        return np.array([p.track_id for p in self.persons_2d], dtype=np.int64)

    @property
    def layout_2d(self) -> str:
        return self.persons_2d[0].layout if self.persons_2d else "coco17"

    def keypoints_2d(self, as_lifted: bool = False) -> np.ndarray:
        """(P, T, J, 3): x, y, confidence; with ``as_lifted``, the left/right labels exchanged where they were
        before lifting (``labels_swapped``), so the 2D tells left from right as the 3D does."""
        if not self.persons_2d:
            return np.zeros((0, 0, get_layout(self.layout_2d).num_joints, 3), np.float32)
        kp = np.stack([np.concatenate([p.keypoints, p.confidence[..., None]], axis=-1) for p in self.persons_2d])
        if as_lifted and self.labels_swapped is not None:
            from .repair import exchange_labels

            kp = np.stack([exchange_labels(k, s, self.layout_2d) for k, s in zip(kp, self.labels_swapped)])
        return kp

    def keypoints_3d(self) -> np.ndarray:
        if not self.persons_3d:
            return np.zeros((len(self.persons_2d), self.num_frames, 17, 3), np.float32) * np.nan
        return np.stack([p.keypoints for p in self.persons_3d])

    def joints_seen(self) -> np.ndarray:
        """(P, T, 17) bool: the 3D joints estimated from what was seen (``persons_3d`` confidence > 0). The other
        joints of a valid frame hold the lifter's guess, which placing the person in the world needs and the
        outputs leave out."""
        if not self.persons_3d:
            return np.zeros((len(self.persons_2d), self.num_frames, 17), bool)
        return np.stack([p.confidence > 0 for p in self.persons_3d])

    def seen_only(self, poses: np.ndarray) -> np.ndarray:
        """(P, T, 17, 3) ``poses`` (3D of these people) with the joints not seen set to NaN: what the outputs show."""
        return np.where(self.joints_seen()[..., None], poses, np.nan).astype(np.float32)

    def valid(self) -> np.ndarray:
        if not self.persons_3d:
            return np.stack([p.valid for p in self.persons_2d]) if self.persons_2d else np.zeros((0, 0), bool)
        return np.stack([p.valid for p in self.persons_3d])

    def to_arrays(self) -> dict[str, np.ndarray]:
        P, T = self.num_persons, self.num_frames
        out = {
            "keypoints_2d": self.keypoints_2d().astype(np.float32),
            "layout_2d": np.array(self.layout_2d),
            "keypoints_3d": self.seen_only(self.keypoints_3d()),
            "joints_seen": self.joints_seen(),
            "valid": self.valid().astype(bool),
            "interpolated": (self.interpolated if self.interpolated is not None else np.zeros((P, T), bool)),
            "track_ids": self.track_ids,
            "fps": np.array(float(self.fps)),
            "frame_size": np.array(self.frame_size, dtype=np.int64),
            "lifter": np.array(self.lifter),
            "input_scale": (self.input_scale if self.input_scale is not None else np.ones(P)).astype(np.float32),
            "swaps_fixed": (self.swaps_fixed if self.swaps_fixed is not None else np.zeros(P)).astype(np.int64),
            "labels_swapped": (self.labels_swapped if self.labels_swapped is not None
                               else np.zeros((P, T, 3), bool)).astype(bool),
            "source": np.array(self.source),
        }
        if self.timestamps is not None:
            out["timestamps"] = np.asarray(self.timestamps, np.float64)
        if self.world is not None:
            out.update({
                "keypoints_3d_world": self.seen_only(self.world.poses),
                "root_positions": self.world.roots.astype(np.float32),
                "world_rotation": self.world.rotation.astype(np.float32),
                "trajectory": np.array(self.world.trajectory),
                "rebase": np.array(self.world.rebase),
            })
        return out

    def save_npz(self, path: str | Path, force: bool = False) -> Path:
        """Write atomically (a temporary file, then rename)."""
        buf = io.BytesIO()
        np.savez_compressed(buf, **self.to_arrays())
        with AtomicPath(path, force=force) as out:
            out.tmp.write_bytes(buf.getvalue())
        return Path(path)


def load_npz(path: str | Path, fps: float | None = None) -> PoseResult:
    """Read a video3d npz, or any npz with ``keypoints_2d`` ((P,) T, J, 2 or 3), ``layout_2d`` and ``frame_size``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        check_npz(path)  # sizes first: a small file that would inflate past what an input may hold is refused
        data = np.load(path, allow_pickle=False)
        keys = set(data.files)
    except TooLargeError as exc:
        raise InputError(f"{path} was not loaded: {exc}") from None
    except Exception as exc:
        raise InputError(f"{path} is not a readable npz file ({type(exc).__name__})") from None
    with data:
        try:
            return _from_arrays(data, keys, fps, path)
        except (TypeError, ValueError, KeyError) as exc:  # object arrays, strings where numbers belong, bad shapes
            raise InputError(f"{path}: {type(exc).__name__}: {exc}") from None


def _array(data, key: str, dtype, shape: tuple, path: Path) -> np.ndarray:
    """data[key] as ``dtype`` with exactly ``shape`` (InputError otherwise)."""
    value = np.asarray(data[key])
    if value.shape != shape:
        raise InputError(f"{path}: {key} has shape {value.shape}, expected {shape}")
    if value.dtype.kind not in "biuf":
        raise InputError(f"{path}: {key} holds {value.dtype}, not numbers")
    return value.astype(dtype)


def _number(data, key: str, path: Path) -> float:
    value = np.asarray(data[key])
    if value.size != 1 or value.dtype.kind not in "biuf" or not np.isfinite(value).all() or float(value) <= 0:
        raise InputError(f"{path}: {key} must be a positive number, got {value!r}")
    return float(value)


def _from_arrays(data, keys: set, fps: float | None, path: Path) -> PoseResult:
    missing = {"keypoints_2d", "layout_2d", "frame_size"} - keys
    if missing:
        raise InputError(f"{path} lacks {', '.join(sorted(missing))} (see the npz format in README.md)")
    kp = np.asarray(data["keypoints_2d"], dtype=np.float32)
    layout = str(data["layout_2d"])
    try:
        joints = get_layout(layout).num_joints
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None
    if kp.ndim == 3:
        kp = kp[None]
    if kp.ndim != 4 or kp.shape[2] != joints or kp.shape[3] not in (2, 3):
        raise InputError(f"{path}: keypoints_2d must be (P, T, {joints}, 2 or 3), got {data['keypoints_2d'].shape}")
    if kp.shape[1] == 0:
        raise InputError(f"{path} has no frames")
    frame_size = tuple(int(v) for v in np.asarray(data["frame_size"]).reshape(-1)[:2])
    if len(frame_size) != 2 or min(frame_size) <= 0:
        raise InputError(f"{path}: frame_size must be (width, height)")
    if "fps" in keys:
        fps = _number(data, "fps", path)
    elif fps is None:
        raise InputError(f"{path} has no fps; pass --fps")
    P, T = kp.shape[:2]
    xy = kp[..., :2].copy()
    conf = kp[..., 2].copy() if kp.shape[3] == 3 else np.ones(kp.shape[:3], np.float32)
    missing_joint = ~np.isfinite(xy).all(-1)
    xy[missing_joint] = np.nan
    conf = np.where(missing_joint | ~np.isfinite(conf), 0.0, np.clip(conf, 0.0, 1.0)).astype(np.float32)
    ids = _array(data, "track_ids", np.int64, (P,), path) if "track_ids" in keys else np.arange(P)
    try:
        persons = [PoseSequence(xy[p], conf[p], fps, layout, track_id=int(ids[p]), frame_size=frame_size)
                   for p in range(P)]
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None
    result = PoseResult(persons, fps, frame_size, source=str(data["source"]) if "source" in keys else path.name)
    if "timestamps" in keys:
        ts = _array(data, "timestamps", np.float64, (T,), path)
        if not np.isfinite(ts).all() or (np.diff(ts) <= 0).any():
            raise InputError(f"{path}: timestamps must increase")
        result.timestamps = ts
    if "keypoints_3d" in keys and "lifter" in keys and str(data["lifter"]):
        k3 = _array(data, "keypoints_3d", np.float32, (P, T, 17, 3), path)
        valid = _array(data, "valid", bool, (P, T), path) if "valid" in keys else np.isfinite(k3[..., 0]).all(-1)
        c3 = np.where(np.isfinite(k3[..., 0]), 1.0, 0.0).astype(np.float32)
        if "joints_seen" in keys:
            c3 *= _array(data, "joints_seen", bool, (P, T, 17), path)
        result.persons_3d = [PoseSequence(k3[p], c3[p] * valid[p][:, None], fps, "h36m17", track_id=int(ids[p]))
                             for p in range(P)]
        result.lifter = str(data["lifter"])
        result.interpolated = _array(data, "interpolated", bool, (P, T), path) if "interpolated" in keys else None
        result.input_scale = _array(data, "input_scale", np.float32, (P,), path) if "input_scale" in keys else None
        result.swaps_fixed = _array(data, "swaps_fixed", np.int64, (P,), path) if "swaps_fixed" in keys else None
        result.labels_swapped = _array(data, "labels_swapped", bool, (P, T, 3), path) \
            if "labels_swapped" in keys else None
    if {"keypoints_3d_world", "root_positions", "world_rotation"} <= keys:
        result.world = WorldFrame(_array(data, "world_rotation", np.float32, (3, 3), path),
                                  _array(data, "keypoints_3d_world", np.float32, (P, T, 17, 3), path),
                                  _array(data, "root_positions", np.float32, (P, T, 3), path),
                                  bool(data["trajectory"]) if "trajectory" in keys else False,
                                  str(data["rebase"]) if "rebase" in keys else "sequence")
    return result
