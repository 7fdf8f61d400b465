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
    """ByteTrack settings (ultralytics' defaults, except the buffer, which is one second of video)."""

    track_high_thresh: float = 0.25
    track_low_thresh: float = 0.1
    new_track_thresh: float = 0.25
    track_buffer_seconds: float = 1.0
    match_thresh: float = 0.8
    fuse_score: bool = True

    def yaml(self, fps: float) -> str:
        return "\n".join([
            "tracker_type: bytetrack",
            f"track_high_thresh: {self.track_high_thresh}",
            f"track_low_thresh: {self.track_low_thresh}",
            f"new_track_thresh: {self.new_track_thresh}",
            f"track_buffer: {max(1, round(self.track_buffer_seconds * fps))}",
            f"match_thresh: {self.match_thresh}",
            f"fuse_score: {self.fuse_score}",
        ]) + "\n"


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


class PoseDetector:
    """YOLO pose with ByteTrack over consecutive frames of one video."""

    def __init__(self, detector: str | os.PathLike | None = None, device: str = "cpu", fps: float = 30.0,
                 conf: float = 0.1, iou: float = 0.7, imgsz: int = 640, max_det: int = 50,
                 tracker: TrackerConfig = TrackerConfig()):
        if device == "cuda" and not _cuda():  # before loading anything; ultralytics would fail at the first frame
            raise DeviceError("--device cuda was asked for but PyTorch sees no CUDA GPU (use --device cpu or auto)")
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
        self.conf, self.iou, self.imgsz, self.max_det = conf, iou, imgsz, max_det
        self.tracker = tracker
        self._tmp = tempfile.mkdtemp(prefix="video3d-tracker-")
        atexit.register(shutil.rmtree, self._tmp, True)  # also when never closed (a batch worker's detector)
        self.tracker_yaml = Path(self._tmp) / "bytetrack.yaml"
        self.start_video(fps)

    def start_video(self, fps: float) -> None:
        """Begin a new video (the constructor begins the first): the next frame starts a fresh tracker whose
        buffer is one second at this frame rate. One detector can so serve many videos (``video3d batch``)
        without reloading the model."""
        self.tracker_yaml.write_text(self.tracker.yaml(fps))
        self._persist = False

    def track(self, frame: np.ndarray) -> list[Detection]:
        """Detect and track people in the next frame (BGR uint8) of the video."""
        persist, self._persist = self._persist, True
        try:
            results = self.model.track(
                source=frame, persist=persist, tracker=str(self.tracker_yaml), conf=self.conf, iou=self.iou,
                imgsz=self.imgsz, device=self.device, classes=[0], max_det=self.max_det, half=False,
                augment=False, agnostic_nms=False, stream=False, save=False, show=False, verbose=False,
            )
        except ModuleNotFoundError as exc:
            raise DetectorError(f"the detector {self.name} needs the Python package {exc.name!r}: "
                                f"pip install {exc.name}") from None
        result = results[0]
        boxes, kps = result.boxes, result.keypoints
        if boxes is None or boxes.id is None or kps is None or len(boxes) == 0:
            return []
        ids = boxes.id.int().cpu().numpy()
        xyxy = boxes.xyxy.cpu().numpy()
        scores = boxes.conf.cpu().numpy()
        xy = kps.xy.cpu().numpy()
        kconf = kps.conf.cpu().numpy() if kps.conf is not None else np.ones(xy.shape[:2], np.float32)
        if xy.shape[1] != 17:
            raise DetectorError(f"the detector {self.name} outputs {xy.shape[1]} keypoints, not COCO-17")
        return [Detection(int(i), b.astype(np.float32), float(s), k.astype(np.float32), c.astype(np.float32))
                for i, b, s, k, c in zip(ids, xyxy, scores, xy, kconf)]

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "PoseDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
