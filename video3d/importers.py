"""2D keypoints from other tools, as a ``PoseResult`` in COCO-17 (then ``video3d lift`` or
``reconstruct --keypoints`` take it from there).

- OpenPose: a folder of per-frame ``*_keypoints.json`` files (``people[].pose_keypoints_2d``), BODY_25 or
  COCO-18 (told apart by the number of keypoints); frames in file-name order. A keypoint with
  confidence 0 is missing.
- COCO-format JSON: a results list (``[{image_id, keypoints, score, track_id?}]``) or a dataset
  (``{images: [...], annotations: [...]}``); frames in ``frame_id`` / ``id`` order. A keypoint with
  visibility / score 0 is missing.
Files without track ids are tracked here: detections are matched frame to frame (Hungarian, on the mean
distance of shared keypoints in units of the person's height); a person unseen for over a second ends.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .detector import Detection
from .errors import InputError
from .results import PoseResult
from .tracks import TrackBuilder, assign_track_ids

# indices into each format giving COCO-17 order (nose, l eye, r eye, l ear, r ear, l shoulder, ...)
BODY25_TO_COCO17 = [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11]
COCO18_TO_COCO17 = [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10]


def _from_flat(flat, order: list[int] | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(flat, dtype=np.float32).reshape(-1, 3)
    if len(a) != n:
        raise InputError(f"expected {n} keypoints, got {len(a)}")
    if order is not None:
        a = a[order]
    kp, conf = a[:, :2].copy(), np.clip(a[:, 2], 0, 1)
    missing = conf <= 0
    kp[missing] = np.nan
    conf[missing] = 0
    return kp, conf


MALFORMED = (TypeError, KeyError, ValueError, AttributeError, IndexError)  # what a wrongly shaped document raises


def read_openpose(folder: str | Path) -> list[list[Detection]]:
    folder = Path(folder)
    files = sorted(folder.glob("*.json"))
    if not files:
        raise InputError(f"{folder} holds no OpenPose .json files")
    frames = []
    for f in files:
        try:
            frames.append(_openpose_frame(f))
        except MALFORMED as exc:  # UnicodeDecodeError too (a ValueError)
            raise InputError(f"{f} is not an OpenPose keypoint file ({type(exc).__name__}: {exc})") from None
    return frames


def _openpose_frame(f: Path) -> list[Detection]:
    doc = json.loads(f.read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("people"), list):
        raise ValueError("no 'people' list")
    dets = []
    for person in doc["people"]:
        if not isinstance(person, dict):
            raise ValueError("a person is not an object")
        flat = person.get("pose_keypoints_2d", [])
        n = len(flat) // 3
        if n == 25:
            kp, conf = _from_flat(flat, BODY25_TO_COCO17, 25)
        elif n == 18:
            kp, conf = _from_flat(flat, COCO18_TO_COCO17, 18)
        else:
            raise InputError(f"{f}: {n} keypoints per person; OpenPose BODY_25 (25) or COCO (18) expected")
        pid = person.get("person_id", -1)
        pid = pid[0] if isinstance(pid, list) and pid else pid
        dets.append(Detection.from_keypoints(kp, conf, int(pid) if isinstance(pid, int) and pid >= 0 else None))
    return dets


def read_coco(path: str | Path) -> tuple[list[list[Detection]], tuple[int, int] | None]:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:  # UnicodeDecodeError too
        raise InputError(f"{path} is not JSON ({exc})") from None
    try:
        return _coco_frames(doc, path)
    except MALFORMED as exc:
        raise InputError(f"{path} is not a COCO keypoint file ({type(exc).__name__}: {exc})") from None


def _coco_frames(doc, path: Path) -> tuple[list[list[Detection]], tuple[int, int] | None]:
    size = None
    if isinstance(doc, dict) and "annotations" in doc:
        images = sorted(doc.get("images", []), key=lambda im: (im.get("frame_id", im["id"]), im["id"]))
        if images and "width" in images[0]:
            size = (int(images[0]["width"]), int(images[0]["height"]))
        anns = doc["annotations"]
        order = {im["id"]: i for i, im in enumerate(images)}
    elif isinstance(doc, list):
        anns = doc
        ids = sorted({a["image_id"] for a in anns})
        order = {i: k for k, i in enumerate(ids)}
    else:
        raise InputError(f"{path} is neither a COCO results list nor a COCO dataset with annotations")
    frames: list[list[Detection]] = [[] for _ in range(len(order))]
    for a in anns:
        if a.get("category_id", 1) != 1 or "keypoints" not in a:
            continue
        kp, conf = _from_flat(a["keypoints"], None, 17)
        if a["image_id"] not in order:
            raise InputError(f"{path}: annotation for unknown image {a['image_id']}")
        tid = a.get("track_id")
        frames[order[a["image_id"]]].append(Detection.from_keypoints(kp, conf, int(tid) if tid is not None else None))
    return frames, size


def to_result(frames: list[list[Detection]], fps: float, frame_size: tuple[int, int], source: str) -> PoseResult:
    """Imported detections as a result: track ids given where the file has none, then the same track building as
    detected video (``tracks.TrackBuilder``), keeping every keypoint the file gives."""
    builder = TrackBuilder(min_confidence=0.0)
    for detections in assign_track_ids(frames, fps):
        builder.add(detections)
    persons = [seq for seq, _ in builder.sequences(fps, frame_size)]
    if not persons:
        raise InputError(f"{source}: no person in any frame")
    return PoseResult(persons, fps, frame_size, source=source)


def load_keypoints(path: str | Path, fps: float | None = None, frame_size: tuple[int, int] | None = None) -> PoseResult:
    """Any supported 2D source: a video3d-style npz, an OpenPose folder or a COCO-format JSON file."""
    from .results import load_npz

    path = Path(path)
    if path.is_dir():
        frames, size, kind = read_openpose(path), None, "OpenPose"
    elif path.suffix.lower() == ".json":
        (frames, size), kind = read_coco(path), "COCO"
    else:
        return load_npz(path, fps=fps)
    size = frame_size or size
    if size is None:
        raise InputError(f"{path}: {kind} keypoints do not give the frame size; pass --frame-size WxH")
    if fps is None:
        raise InputError(f"{path}: {kind} keypoints do not give the frame rate; pass --fps")
    return to_result(frames, fps, size, path.name)
