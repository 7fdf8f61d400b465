"""The one module that talks to ultralytics: YOLO pose + ByteTrack, one frame at a time.

Before ultralytics is imported we turn off what it would otherwise do behind the user's back:
- telemetry, update checks and the import-time internet probe: ``YOLO_OFFLINE=1`` (weights can still
  be downloaded: ultralytics' download code does not consult it);
- installing missing packages: ``YOLO_AUTOINSTALL=false``;
- writing a settings file into the user's home: ``YOLO_CONFIG_DIR`` points at a private temporary
  folder that is removed at exit (unless the user set ``YOLO_CONFIG_DIR`` themselves);
- running code from a model file: ultralytics unpickles ``.pt`` files with ``weights_only=False`` unless
  ``ULTRALYTICS_SAFE_LOAD=1``, which loads them with ``weights_only=True`` and its allow-list of model classes;
  we always set it (and its module flags, should ultralytics be imported already). Only the formats in
  ``SAFE_FORMATS`` are opened at all;
and we set ``sync=False`` in its in-memory settings. The default weights are downloaded once into
``~/.cache/video3d`` ($VIDEO3D_CACHE), never into the current folder.
Every argument of ``YOLO.track`` is passed explicitly, the tracker's configuration included.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DetectorError, DeviceError

DEFAULT_DETECTOR = "yolo11n-pose.pt"
DETECTOR_ENV = "VIDEO3D_DETECTOR"
CACHE_ENV = "VIDEO3D_CACHE"
# The detector formats video3d opens (a file a user names is untrusted): .pt through ultralytics' restricted
# loader, exports whose loaders do not unpickle (ONNX, OpenVINO's XML + weights, TorchScript).
SAFE_FORMATS = {".pt": "PyTorch (.pt)", ".onnx": "ONNX (.onnx)", ".torchscript": "TorchScript (.torchscript)",
                "_openvino_model": "an OpenVINO export folder (NAME_openvino_model/)"}
# ultralytics' own release assets that it can download by name
DOWNLOADABLE = {f"{family}{size}-pose.pt" for family in ("yolov8", "yolo11", "yolo26") for size in "nsmlx"}


@dataclass(frozen=True)
class TrackerConfig:
    """ByteTrack settings (ultralytics' defaults, except the buffer, which is one second of video).
    ``PoseDetector(conf=...)`` sets the two high thresholds."""

    track_high_thresh: float = 0.25
    track_low_thresh: float = 0.1
    new_track_thresh: float = 0.25
    track_buffer_seconds: float = 1.0
    match_thresh: float = 0.8
    fuse_score: bool = True

    def args(self, fps: float):
        """The namespace ultralytics' BYTETracker reads."""
        from ultralytics.utils import IterableSimpleNamespace

        return IterableSimpleNamespace(
            tracker_type="bytetrack", track_high_thresh=self.track_high_thresh,
            track_low_thresh=self.track_low_thresh, new_track_thresh=self.new_track_thresh,
            track_buffer=max(1, round(self.track_buffer_seconds * fps)), match_thresh=self.match_thresh,
            fuse_score=self.fuse_score)


@dataclass(frozen=True)
class Detection:
    """One person in one frame, from the detector or from imported keypoints (``video3d.importers``)."""

    track_id: int | None  # None: not yet given one (imported keypoints before ``tracks.assign_track_ids``)
    box: np.ndarray  # (4,) x1, y1, x2, y2 pixels (imported keypoints: the box around the seen ones)
    score: float
    keypoints: np.ndarray  # (17, 2) COCO-17 pixels, NaN where missing
    keypoint_confidence: np.ndarray  # (17,), 0 where missing

    @classmethod
    def from_keypoints(cls, keypoints: np.ndarray, confidence: np.ndarray, track_id: int | None = None) -> "Detection":
        """A detection of imported keypoints: its box is the one around the seen keypoints, its score their mean
        confidence."""
        seen = np.isfinite(keypoints).all(-1) & (confidence > 0)
        if seen.any():
            box = np.concatenate([keypoints[seen].min(0), keypoints[seen].max(0)]).astype(np.float32)
            score = float(confidence[seen].mean())
        else:
            box, score = np.full(4, np.nan, np.float32), 0.0
        return cls(track_id, box, score, keypoints.astype(np.float32), confidence.astype(np.float32))


def resolve_detector(detector: str | os.PathLike | None) -> str:
    """The detector to use: the argument, else $VIDEO3D_DETECTOR, else yolo11n-pose.pt."""
    if detector:
        return str(detector)
    return os.environ.get(DETECTOR_ENV) or DEFAULT_DETECTOR


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "video3d"


_CONFIG_DIR: str | None = None


def _quiet_ultralytics() -> None:
    """Set ultralytics' environment switches before its first import (idempotent)."""
    global _CONFIG_DIR
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ["YOLO_VERBOSE"] = "false"
    os.environ["ULTRALYTICS_SAFE_LOAD"] = "1"  # .pt files: weights_only=True with ultralytics' class allow-list
    for name in ("ultralytics.utils", "ultralytics.nn.tasks"):  # read at import: set them if imported before us
        if name in sys.modules and hasattr(sys.modules[name], "SAFE_LOAD"):
            sys.modules[name].SAFE_LOAD = True
    if "YOLO_CONFIG_DIR" not in os.environ and _CONFIG_DIR is None:
        _CONFIG_DIR = tempfile.mkdtemp(prefix="video3d-ultralytics-")
        atexit.register(remove_settings_dir)
        os.environ["YOLO_CONFIG_DIR"] = _CONFIG_DIR


def remove_settings_dir() -> None:
    """Remove the private settings folder now (at exit otherwise): for a process that will not exit normally,
    such as a Ray actor about to be killed."""
    if _CONFIG_DIR is not None:
        shutil.rmtree(_CONFIG_DIR, ignore_errors=True)


def check_format(path: Path) -> None:
    """Refuse (DetectorError) a local detector that is not one of SAFE_FORMATS, or a folder that is not a
    complete OpenVINO export, before ultralytics sees it."""
    name = path.name.lower()
    kinds = ", ".join(SAFE_FORMATS.values())
    if path.is_dir():
        if not name.endswith("_openvino_model"):
            raise DetectorError(f"{path} is a folder but not an OpenVINO export (NAME_openvino_model/); "
                                f"video3d opens {kinds}")
        xml = sorted(path.glob("*.xml"))
        if not xml or not xml[0].with_suffix(".bin").is_file():
            raise DetectorError(f"{path} is not a complete OpenVINO export (a .xml and its .bin are needed)")
        return
    if not any(name.endswith(suffix) for suffix in SAFE_FORMATS if suffix.startswith(".")):
        raise DetectorError(f"{path}: not a detector format video3d opens ({kinds})")


def _locate(detector: str) -> str:
    path = Path(detector).expanduser()
    if path.exists():
        check_format(path)
        return str(path)
    if detector in DOWNLOADABLE:
        cached = cache_dir() / detector
        if cached.is_file():
            return str(cached)
        from ultralytics.utils.downloads import attempt_download_asset

        cached.parent.mkdir(parents=True, exist_ok=True)
        try:
            attempt_download_asset(cached)
        except Exception as exc:  # ConnectionError and friends
            raise DetectorError(
                f"could not download the detector weights {detector} ({type(exc).__name__}); "
                f"pass --detector PATH to a local YOLO pose model (or set {DETECTOR_ENV})") from None
        if not cached.is_file():
            raise DetectorError(f"could not download the detector weights {detector}; pass --detector PATH "
                                f"to a local YOLO pose model (or set {DETECTOR_ENV})")
        return str(cached)
    raise DetectorError(f"detector {detector!r} is neither a local file or folder nor a known ultralytics pose "
                        f"model (e.g. {DEFAULT_DETECTOR}); pass --detector PATH")


# A detection in a tile whose box comes this close (crop pixels) to an edge of the crop inside the frame is a person
# cut by the crop: left to the neighbouring tile (the tiles overlap by TILE_OVERLAP) or to the whole-frame pass.
TILE_EDGE_MARGIN = 4.0
TILE_OVERLAP = 0.25
# Two detections of different passes (the whole frame, tiles) of the same person: box IoU above this.
DUPLICATE_IOU = 0.5
NESTED = 0.9  # ... or of one pass, when this much of the smaller box lies inside the other


def tile_windows(width: int, height: int, size: int, overlap: float = TILE_OVERLAP) -> list[tuple[int, int, int, int]]:
    """Square crops (x0, y0, x1, y1) of ``size`` frame pixels covering a width x height frame, neighbours
    overlapping by at least ``overlap`` of a crop, the last ones flush with the frame's edges; none when the frame
    fits in one crop (the whole-frame pass sees it at full resolution already)."""
    if width <= size and height <= size:
        return []

    def starts(length: int) -> list[int]:
        if length <= size:
            return [0]
        step = size * (1 - overlap)
        n = int(np.ceil((length - size) / step)) + 1
        return sorted({int(round(v)) for v in np.linspace(0, length - size, n)})

    return [(x, y, min(x + size, width), min(y + size, height)) for y in starts(height) for x in starts(width)]


@dataclass
class PassDetections:
    """The people one inference pass found, in frame pixels: boxes (N, 4) x1 y1 x2 y2, scores (N,), keypoints
    (N, 17, 2), keypoint confidences (N, 17)."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray
    keypoint_confidence: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, index) -> "PassDetections":
        return PassDetections(self.boxes[index], self.scores[index], self.keypoints[index],
                              self.keypoint_confidence[index])

    @classmethod
    def concat(cls, parts: list["PassDetections"]) -> "PassDetections":
        if not parts:
            return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 17, 2), np.float32),
                       np.zeros((0, 17), np.float32))
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("boxes", "scores", "keypoints", "keypoint_confidence")))


def whole_in_crop(boxes: np.ndarray, crop: tuple[int, int, int, int], width: int, height: int,
                  margin: float = TILE_EDGE_MARGIN) -> np.ndarray:
    """(N,) bool: the box (frame pixels) keeps clear of every edge of the crop that lies inside the frame."""
    x0, y0, x1, y1 = crop
    ok = np.ones(len(boxes), bool)
    if x0 > 0:
        ok &= boxes[:, 0] > x0 + margin
    if y0 > 0:
        ok &= boxes[:, 1] > y0 + margin
    if x1 < width:
        ok &= boxes[:, 2] < x1 - margin
    if y1 < height:
        ok &= boxes[:, 3] < y1 - margin
    return ok


def box_overlap(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, M) intersection over union of boxes x1 y1 x2 y2, and (N, M) the fraction of each box of ``a`` that
    lies inside each box of ``b``."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: np.clip(x[:, 2:] - x[:, :2], 0, None).prod(-1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return (np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0),
            inter / np.maximum(area(a), 1e-9)[:, None])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) intersection over union of boxes x1 y1 x2 y2."""
    return box_overlap(a, b)[0]


def merge_passes(tiles: list[PassDetections], whole: PassDetections, iou: float = DUPLICATE_IOU) -> PassDetections:
    """One detection per person from the tiles' (already cut to the people whole in their crop) and the whole
    frame's: the tiles' first (they see the person at full resolution), by score, then the whole frame's. A
    detection overlapping a kept one by more than ``iou`` is the same person and dropped when the two come from
    different passes, or when it lies inside the kept one (at full resolution YOLO, whose own NMS keeps boxes up to
    IoU 0.7, gives some people a second, narrower box: a ghost person for ByteTrack); two people of one pass
    that merely overlap stay two."""
    passes = [*tiles, whole]
    order = []  # (pass rank: tiles 0, whole 1; -score; pass index; detection index)
    for k, p in enumerate(passes):
        rank = 1 if k == len(passes) - 1 else 0
        order += [(rank, -float(s), k, i) for i, s in enumerate(p.scores)]
    order.sort()
    kept: list[tuple[int, int]] = []  # (pass, detection)
    for _, _, k, i in order:
        box = passes[k].boxes[i:i + 1]
        if kept:
            iou_kept, inside = (x[0] for x in box_overlap(box, np.concatenate([passes[q].boxes[j:j + 1]
                                                                           for q, j in kept])))
            other_pass = np.array([q != k for q, _ in kept])
            if np.any((iou_kept > iou) & (other_pass | (inside > NESTED))):
                continue
        kept.append((k, i))
    return PassDetections.concat([passes[k].take([i]) for k, i in kept])


class PoseDetector:
    """YOLO pose with ByteTrack over consecutive frames of one video.

    conf    a person scoring at least this starts or continues a track (ByteTrack's high thresholds); down to
            min(conf, 0.1) a detection only continues one (its second association); YOLO is asked for those
    imgsz   the network's input size (a model exported with a fixed input size has only that one)
    tile    also run the model on overlapping crops of ``imgsz`` frame pixels (small people seen at full
            resolution) and merge them with the whole frame's detections (``merge_passes``)
    """

    def __init__(self, detector: str | os.PathLike | None = None, device: str = "cpu", fps: float = 30.0,
                 conf: float = 0.25, iou: float = 0.7, imgsz: int = 640, max_det: int = 50, tile: bool = False,
                 tracker: TrackerConfig | None = None):
        if device == "cuda" and not _cuda():  # before loading anything; ultralytics would fail at the first frame
            raise DeviceError("--device cuda was asked for but PyTorch sees no CUDA GPU (use --device cpu or auto)")
        from .options import check_detector_settings

        check_detector_settings(conf, imgsz)
        _quiet_ultralytics()
        try:
            from ultralytics import YOLO
            from ultralytics.utils import SETTINGS
        except ImportError as exc:  # pragma: no cover - a dependency
            raise DetectorError(f"ultralytics is not importable: {exc}") from None
        SETTINGS.update({"sync": False})
        self.name = resolve_detector(detector)
        path = _locate(self.name)
        try:
            self.model = YOLO(path, task="pose")
        except ModuleNotFoundError as exc:
            raise DetectorError(f"the detector {self.name} needs the Python package {exc.name!r}: "
                                f"pip install {exc.name}") from None
        except Exception as exc:
            raise DetectorError(f"cannot load the detector {self.name}: {type(exc).__name__}: {exc}") from None
        self.device = "cpu" if device in (None, "auto") and not _cuda() else ("0" if device in (None, "auto", "cuda") else device)
        self.conf, self.iou, self.imgsz, self.max_det, self.tile = conf, iou, imgsz, max_det, tile
        self.tracker_config = tracker or TrackerConfig(track_high_thresh=conf, new_track_thresh=conf,
                                                       track_low_thresh=min(conf, TrackerConfig.track_low_thresh))
        self._checked_size = False
        self.start_video(fps)

    def start_video(self, fps: float) -> None:
        """Begin a new video (the constructor begins the first): a fresh tracker whose buffer is one second at
        this frame rate. One detector can so serve many videos (``video3d batch``) without reloading the model."""
        from ultralytics.trackers.byte_tracker import BYTETracker

        self.tracker = BYTETracker(args=self.tracker_config.args(fps))

    def _predict(self, image: np.ndarray, offset: tuple[int, int] = (0, 0)) -> PassDetections:
        try:
            results = self.model.predict(
                source=image, conf=min(self.conf, TrackerConfig.track_low_thresh), iou=self.iou, imgsz=self.imgsz,
                device=self.device, classes=[0], max_det=self.max_det, half=False, augment=False,
                agnostic_nms=False, stream=False, save=False, show=False, verbose=False,
            )
        except ModuleNotFoundError as exc:
            raise DetectorError(f"the detector {self.name} needs the Python package {exc.name!r}: "
                                f"pip install {exc.name}") from None
        if not self._checked_size:
            self._check_size()
        result = results[0]
        boxes, kps = result.boxes, result.keypoints
        if boxes is None or kps is None or len(boxes) == 0:
            return PassDetections.concat([])
        xy = kps.xy.cpu().numpy().astype(np.float32)
        if xy.shape[1] != 17:
            raise DetectorError(f"the detector {self.name} outputs {xy.shape[1]} keypoints, not COCO-17")
        kconf = kps.conf.cpu().numpy() if kps.conf is not None else np.ones(xy.shape[:2], np.float32)
        shift = np.array(offset, np.float32)
        return PassDetections(boxes.xyxy.cpu().numpy().astype(np.float32) + np.tile(shift, 2),
                              boxes.conf.cpu().numpy().astype(np.float32), xy + shift, kconf.astype(np.float32))

    def _check_size(self) -> None:
        """A model exported with a fixed input size runs at that size whatever ``imgsz`` says (ultralytics
        overrides it): say so rather than run at another size than asked."""
        self._checked_size = True
        used = getattr(getattr(self.model, "predictor", None), "imgsz", None)
        if used is not None and tuple(used) != (self.imgsz, self.imgsz):
            raise DetectorError(f"the detector {self.name} has a fixed {used[1]}x{used[0]} input (exported without "
                                f"dynamic shapes): --imgsz {self.imgsz} cannot apply; leave it at {used[1]}, or "
                                f"use --tile to see small people at full resolution")

    def detect(self, frame: np.ndarray) -> PassDetections:
        """The people in one frame (BGR uint8), untracked: the whole frame, and with ``tile`` its crops, merged."""
        whole = self._predict(frame)
        if not self.tile:
            return whole
        height, width = frame.shape[:2]
        tiles = []
        for crop in tile_windows(width, height, self.imgsz):
            x0, y0, x1, y1 = crop
            found = self._predict(np.ascontiguousarray(frame[y0:y1, x0:x1]), (x0, y0))
            tiles.append(found.take(whole_in_crop(found.boxes, crop, width, height)))
        return merge_passes(tiles, whole)

    def track(self, frame: np.ndarray) -> list[Detection]:
        """Detect and track people in the next frame (BGR uint8) of the video: ByteTrack as ultralytics'
        ``YOLO.track`` runs it (new tracks hidden until confirmed)."""
        from ultralytics.engine.results import Boxes

        found = self.detect(frame)
        data = np.concatenate([found.boxes, found.scores[:, None], np.zeros((len(found), 1), np.float32)], 1)
        tracks = self.tracker.update(Boxes(data, frame.shape[:2]), frame)
        if len(tracks) == 0:
            return []
        idx = tracks[:, -1].astype(int)  # rows: x1, y1, x2, y2, track id, score, class, detection index
        height, width = frame.shape[:2]
        boxes = np.clip(tracks[:, :4], 0, [width, height, width, height]).astype(np.float32)  # as YOLO.track clips
        return [Detection(int(t[4]), box, float(t[5]), found.keypoints[i],
                          found.keypoint_confidence[i]) for t, box, i in zip(tracks, boxes, idx)]

    def close(self) -> None:
        pass

    def __enter__(self) -> "PoseDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
