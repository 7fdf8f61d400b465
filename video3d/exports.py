"""Exports of a placed ``PoseResult``: BVH (opens in Blender), JSON and CSV. npz is always written.

All three describe the world frame of ``video3d.world`` on the rigid skeleton of ``video3d.skeleton``:
metres, the person's median bone lengths, floor at z = 0. The JSON and CSV also carry the lifter's raw
camera-space output (root-relative, x right, y down, z away from the camera).

BVH: one file per person (``<name>_<track id>.bvh``), hierarchy H36M-17 plus zero-length branch joints,
T-pose rest, ZXY Euler channels in degrees, root translation, frame time 1 / fps, one frame per video
frame (frames where the person is not seen hold the nearest pose). Axes: Y up (the BVH convention:
x right, y up, z toward the camera) or Z up (x right, y away from the camera, z up).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from .errors import InputError, OutputError
from .io import AtomicPath, check_output
from .layouts import H36M17
from .results import PoseResult
from .skeleton import NODES, FittedSkeleton, fit, node_offsets
from .tracks import GUESSED
from .world import H36M_BONES

FORMATS = ("npz", "json", "csv", "bvh")
UP_AXES = ("y", "z")
# world (x right, y away, z up) -> BVH Y-up (x right, y up, z toward the camera)
Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def euler_zxy(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 3) angles (z, x, y) in degrees with R = Rz(z) Rx(x) Ry(y)."""
    x = np.arcsin(np.clip(R[..., 2, 1], -1.0, 1.0))
    z = np.arctan2(-R[..., 0, 1], R[..., 1, 1])
    y = np.arctan2(-R[..., 2, 0], R[..., 2, 2])
    return np.degrees(np.stack([z, x, y], axis=-1))


def bvh_text(skel: FittedSkeleton, fps: float, up: str = "y") -> str:
    """The BVH of a fitted skeleton; positions in metres."""
    if up not in UP_AXES:
        raise ValueError(f"up must be one of {', '.join(UP_AXES)}")
    A = Y_UP if up == "y" else np.eye(3)
    offsets = node_offsets(skel.rest) @ A.T
    local = A @ skel.local @ A.T  # the same rotations, expressed in the file's axes
    root = skel.root @ A.T
    angles = np.unwrap(np.radians(euler_zxy(local)), axis=0)  # continuous over frames
    angles = np.degrees(angles)
    lines = ["HIERARCHY"]
    children = {i: [k for k, n in enumerate(NODES) if n.parent == i] for i in range(len(NODES))}

    def write(i: int, depth: int) -> None:
        pad = "  " * depth
        node = NODES[i]
        head = "ROOT" if node.parent < 0 else "JOINT"
        lines.append(f"{pad}{head} {node.name}")
        lines.append(f"{pad}{{")
        o = offsets[i]
        lines.append(f"{pad}  OFFSET {o[0]:.6f} {o[1]:.6f} {o[2]:.6f}")
        if node.parent < 0:
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation")
        else:
            lines.append(f"{pad}  CHANNELS 3 Zrotation Xrotation Yrotation")
        if children[i]:
            for k in children[i]:
                write(k, depth + 1)
        else:  # an end site a tenth of the bone further along
            parent_offset = offsets[i] if np.linalg.norm(offsets[i]) > 0 else np.array([0.0, 0.05, 0.0])
            e = 0.25 * parent_offset
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET {e[0]:.6f} {e[1]:.6f} {e[2]:.6f}")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    write(0, 0)
    T = len(root)
    lines += ["MOTION", f"Frames: {T}", f"Frame Time: {1.0 / fps:.8f}"]
    for t in range(T):
        values = [*root[t], *angles[t].reshape(-1)]
        lines.append(" ".join(f"{v:.6f}" for v in values))
    return "\n".join(lines) + "\n"


def hang_unseen(poses: np.ndarray) -> np.ndarray:
    """World poses (T, 17, 3) with the joints not seen (NaN in a frame whose pelvis is there) hung from their
    parent: the limbs straight down, the head straight up, at Human3.6M's bone lengths. A BVH animates every
    joint; this is what it shows for a joint the outputs leave out (``PoseResult.joints_seen``)."""
    x = np.array(poses, dtype=np.float64, copy=True)
    rows = np.isfinite(x[:, 0]).all(-1)
    for j, parent in enumerate(H36M17.parents):  # parents come before their children
        if parent < 0:
            continue
        lost = rows & ~np.isfinite(x[:, j]).all(-1)
        down = GUESSED.get(j, (parent, 1))[1]  # the head up, everything else down
        x[lost, j] = x[lost, parent] - np.array([0.0, 0.0, down * H36M_BONES[j]])
    return x


def fit_people(result: PoseResult) -> list[FittedSkeleton | None]:
    """The rigid skeleton of each placed person (None for a person with no valid pose), on the joints seen
    (the others hung from their parents: ``hang_unseen``), so a BVH is the same from a fresh result and from its
    npz."""
    if result.world is None:
        raise ValueError("place the poses in the world frame first (pipeline.place)")
    out = []
    for poses in result.seen_only(result.world.poses):
        poses = hang_unseen(poses)
        out.append(fit(poses) if np.isfinite(poses).all(axis=(-1, -2)).any() else None)
    return out


def bvh_path(stem: Path, track_id: int) -> Path:
    return stem.with_name(f"{stem.name}_{track_id}.bvh")


def bvh_texts(result: PoseResult, stem: Path, up: str = "y") -> dict[Path, str]:
    """{path: BVH text} for every person with a valid pose (``skipped_people`` names the others)."""
    return {bvh_path(stem, person.track_id): bvh_text(skel, result.fps, up)
            for person, skel in zip(result.persons_2d, fit_people(result)) if skel is not None}


def skipped_people(result: PoseResult) -> list[int]:
    """Track ids of the people with no valid 3D pose in any frame (nothing to export for them)."""
    return [int(p.track_id) for p, v in zip(result.persons_2d, result.valid()) if not v.any()]


def _write_text(path: Path, text: str, force: bool) -> Path:
    with AtomicPath(path, force=force) as a:
        a.tmp.write_text(text)
    return path


def _meta(result: PoseResult) -> dict:
    return {
        "format": "video3d.poses.v1",
        "units": "metres",
        "joints": list(H36M17.joints),
        "camera_axes": "x right, y down, z away from the camera; pelvis at the origin (the lifter's output)",
        "world_axes": "x right (the camera's, made horizontal), y away from the camera, z up; floor at z = 0; "
                      "constant bone lengths (each person's median)",
        "trajectory": "approximate (assumed focal length)" if result.world.trajectory else "off: each person at "
                      "their median position",
        "fps": result.fps, "frame_size": list(result.frame_size), "source": result.source, "lifter": result.lifter,
    }


def _joints(pose: np.ndarray, seen: np.ndarray) -> list:
    """One frame's joints (17, 3) as lists, None for a joint not seen."""
    return [np.round(j, 5).tolist() if s else None for j, s in zip(pose, seen)]


def json_text(result: PoseResult) -> str:
    """Per person and frame: the 17 joints (None for a joint not seen, ``PoseResult.joints_seen``), or None for a
    frame without 3D."""
    world = result.world.poses
    cam = result.keypoints_3d()
    valid, seen = result.valid(), result.joints_seen()
    doc = {**_meta(result), "persons": []}
    for p, person in enumerate(result.persons_2d):
        doc["persons"].append({
            "track_id": int(person.track_id),
            "valid": valid[p].tolist(),
            "keypoints_3d_camera": [_joints(c, s) if v else None for c, s, v in zip(cam[p], seen[p], valid[p])],
            "keypoints_3d_world": [_joints(w, s) if v else None for w, s, v in zip(world[p], seen[p], valid[p])],
        })
    return json.dumps(doc)


CSV_COLUMNS = ("frame", "time_s", "track_id", "joint_index", "joint", "valid", "seen", "camera_x_m", "camera_y_m",
               "camera_z_m", "world_x_m", "world_y_m", "world_z_m")


def csv_text(result: PoseResult) -> str:
    """One row per frame, person and joint (columns: CSV_COLUMNS; empty coordinates where invalid or the joint not
    seen, ``PoseResult.joints_seen``). time_s is the frame's own time: its timestamp for a variable-frame-rate
    video, else frame / fps."""
    times = result.frame_times()
    world = result.world.poses
    cam = result.keypoints_3d()
    valid, seen = result.valid(), result.joints_seen()
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for t in range(result.num_frames):
        for p, person in enumerate(result.persons_2d):
            for j, name in enumerate(H36M17.joints):
                shown = valid[p, t] and seen[p, t, j]
                coords = ([f"{v:.5f}" for v in cam[p, t, j]] + [f"{v:.5f}" for v in world[p, t, j]]) \
                    if shown else [""] * 6
                w.writerow([t, f"{times[t]:.5f}", person.track_id, j, name, int(valid[p, t]), int(shown), *coords])
    return buf.getvalue()


def parse_formats(text: str) -> list[str]:
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown export format {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    return formats


def planned_paths(stem: Path, formats: list[str], track_ids=None) -> list[Path]:
    """The files ``export`` will write for these formats (npz is the caller's). BVH files are named after track
    ids; before detection they are unknown, and ``check_exports`` then looks for any ``<stem>_<id>.bvh``."""
    paths = [stem.with_name(f"{stem.name}.{f}") for f in ("json", "csv") if f in formats]
    if "bvh" in formats and track_ids is not None:
        paths += [bvh_path(stem, int(i)) for i in track_ids]
    return paths


def check_exports(stem: Path, formats: list[str], force: bool = False, track_ids=None) -> None:
    """Fail (OutputError) before any work if an export would overwrite a file without ``force``, or cannot be
    written. Without track ids, an existing ``<stem>_<number>.bvh`` counts as one BVH would overwrite."""
    for path in planned_paths(stem, formats, track_ids):
        check_output(path, force)
    if "bvh" in formats and track_ids is None and not force:
        for path in sorted(stem.parent.glob(f"{stem.name}_*.bvh")):
            if path.stem.removeprefix(f"{stem.name}_").isdigit():
                raise OutputError(f"{path} exists and a BVH export may overwrite it; pass --force")


def export(result: PoseResult, stem: Path, formats: list[str], up: str = "y", force: bool = False) -> list[Path]:
    """Write ``stem``.json / .csv and ``stem``_<id>.bvh as asked ('npz' is the caller's). Every file's content
    is made (and the poses checked) before the first is written, so a failure leaves no partial export set.
    People without any valid pose are skipped (``skipped_people``); if nobody has one, InputError."""
    formats = [f for f in formats if f != "npz"]
    if not formats:
        return []
    if result.world is None:
        raise ValueError("place the poses in the world frame first (pipeline.place)")
    if len(skipped_people(result)) == result.num_persons:
        raise InputError("no person has a valid 3D pose in any frame: nothing to export")
    texts: dict[Path, str] = {}
    if "json" in formats:
        texts[stem.with_name(stem.name + ".json")] = json_text(result)
    if "csv" in formats:
        texts[stem.with_name(stem.name + ".csv")] = csv_text(result)
    if "bvh" in formats:
        texts.update(bvh_texts(result, stem, up))
    for path in texts:
        check_output(path, force)
    return [_write_text(path, text, force) for path, text in texts.items()]

