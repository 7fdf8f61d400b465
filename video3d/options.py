"""``ReconstructOptions``: the one set of options of a reconstruction, shared by the CLI (``reconstruct``, ``batch``,
``lift``), ``video3d.batch``'s workers, the Python API (``pipeline.reconstruct``) and what comes next.

Checked on construction, so a bad choice fails before any work, with the valid ones listed. Light to import
(no torch, no ultralytics, no cv2): the CLI builds its choices from it before any command runs.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError
from .exports import FORMATS, parse_formats
from .smoothing import DEFAULT_SMOOTHING, SMOOTHING
from .world import REBASE

if TYPE_CHECKING:
    from .detector import PoseDetector
    from .lifters import Lifter

# --quality -> x264 preset, both at crf 20 (the same visual quality; the preset trades encoding time for file size).
# `python benchmarks/e2e_speed.py --presets medium,veryfast,ultrafast` (README, Speed): ultrafast renders 1.24x as fast
# as veryfast for 3.9x the file; medium was slower than veryfast for no smaller a file, so it is not offered.
QUALITY = {"balanced": "veryfast", "fast": "ultrafast"}
DEFAULT_QUALITY = "balanced"
# How a sequence-to-sequence lifter's windows are placed (``Lifter.predict``): blended, or one per frame.
WINDOW_MODES = ("blend", "centre")
UP_AXES = ("y", "z")
# The 3D panel's default view (``render.SideBySideRenderer``): world azimuth in degrees (-90 = from where the video's
# camera stands, so left and right, near and far read as in the video), turned 30 degrees so depth shows, 15 up.
VIEW_AZIMUTH = -60.0
VIEW_ELEVATION = 15.0
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class ReconstructOptions:
    """How to turn a video into 3D poses. Every field is a keyword of ``pipeline.reconstruct`` and ``batch.run``,
    and (but ``max_gap``, ``min_keypoint_confidence``, ``min_track_frames``) a flag of the CLI.

    lifter, weights   the 2D-to-3D lifter: a registered name (``video3d lifters``) and a checkpoint (None: the
                      shipped weights), or a loaded ``Lifter`` (reused across videos; ``weights`` then unused)
    detector          YOLO pose model: a name or path (None: $VIDEO3D_DETECTOR or the default), or a loaded
                      ``PoseDetector`` (whose own conf, imgsz and tile then apply)
    conf              the detection score that starts or continues a track (``detector.PoseDetector``)
    imgsz             the detector's input size in pixels (a multiple of 32; a fixed-size export has only its own)
    tile              also detect on overlapping crops of imgsz frame pixels, for small people (slower)
    persons           1 = the main subject, N = the N main ones, or "all"
    device            where the networks run: auto, cpu or cuda
    write_video       also render the side-by-side video
    smooth            a preset of ``video3d.smoothing.SMOOTHING``
    rescale           scale each person's 2D to the lifter's typical training size (``pipeline.lift``)
    fix_swaps         undo the detector's short left/right flips before lifting (``video3d.repair``)
    trajectory        people move through the 3D scene (else each stays at their median place)
    rebase            the floor: ground (the supporting foot, per frame), sequence, frame or none (``video3d.world``)
    export            formats to write beside the npz (``video3d.exports.FORMATS``)
    up                BVH up axis: y or z
    windows           sequence-to-sequence lifters: blend or centre (``Lifter.predict``)
    strict            a truncated or damaged video is an error, not a warning
    quality           output video encoding, a key of ``QUALITY``
    max_gap           seconds of missing detections bridged by interpolation (longer gaps split a track)
    min_keypoint_confidence, min_track_frames   what the tracker keeps (``pipeline.detect``)
    """

    lifter: str | Lifter = "gastnet"
    weights: str | None = None
    detector: str | PoseDetector | None = None
    conf: float = 0.25
    imgsz: int = 640
    tile: bool = False
    persons: int | str = 1
    device: str = "auto"
    write_video: bool = True
    smooth: str = DEFAULT_SMOOTHING
    rescale: bool = True
    fix_swaps: bool = True
    trajectory: bool = True
    rebase: str = "ground"
    export: tuple[str, ...] = ("npz",)
    up: str = "y"
    windows: str = "blend"
    strict: bool = False
    quality: str = DEFAULT_QUALITY
    max_gap: float = 0.5
    min_keypoint_confidence: float = 0.3
    min_track_frames: int = 5

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen: normalise once)
        set_("persons", parse_persons(self.persons))
        export = self.export.split(",") if isinstance(self.export, str) else list(self.export)
        try:
            set_("export", tuple(parse_formats(",".join(export))))
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if isinstance(self.weights, os.PathLike):
            set_("weights", str(self.weights))
        for name, choices in (("smooth", SMOOTHING), ("rebase", REBASE), ("up", UP_AXES), ("windows", WINDOW_MODES),
                              ("quality", QUALITY), ("device", DEVICES)):
            if getattr(self, name) not in choices:
                raise InputError(f"{name} is one of {', '.join(choices)}, not {getattr(self, name)!r}")
        check_detector_settings(self.conf, self.imgsz)
        if self.max_gap < 0 or not 0 <= self.min_keypoint_confidence <= 1 or self.min_track_frames < 1:
            raise InputError("max_gap must be >= 0, min_keypoint_confidence in [0, 1], min_track_frames >= 1")

    @classmethod
    def of(cls, options: ReconstructOptions | None = None, **settings: Any) -> ReconstructOptions:
        """``options`` (default: the defaults) with ``settings`` on top; an unknown setting is a TypeError that
        lists the valid ones."""
        unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(f"unknown reconstruct options {unknown}; valid: {', '.join(cls.names())}")
        return dataclasses.replace(options, **settings) if options is not None else cls(**settings)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def describe(self) -> dict[str, str]:
        """Every option as text (a loaded lifter or detector by its name and weights): what makes two runs of a
        video give the same outputs (``batch``'s manifest)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "lifter" and not isinstance(value, str):
                value = f"{value.name} ({value.weights_path or 'untrained'})"
            elif f.name == "detector" and value is not None and not isinstance(value, str):
                value = getattr(value, "name", type(value).__name__)
            out[f.name] = str(value)
        return out


def check_detector_settings(conf: float, imgsz: int) -> None:
    """``conf`` in (0, 1], ``imgsz`` a multiple of 32 (YOLO's stride) from 32 to 4096: an InputError otherwise."""
    if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0 < conf <= 1:
        raise InputError(f"conf is a detection score in (0, 1], not {conf!r}")
    if isinstance(imgsz, bool) or not isinstance(imgsz, int) or not 32 <= imgsz <= 4096 or imgsz % 32:
        raise InputError(f"imgsz is a multiple of 32 from 32 to 4096 (YOLO's stride), not {imgsz!r}")


def parse_persons(value: int | str) -> int | str:
    """1, 2, ..., or "all" (any case); "3" -> 3. Anything else is an InputError."""
    if isinstance(value, str) and value.strip().lower() == "all":
        return "all"
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or (isinstance(value, float) and value != n):
        raise InputError(f"persons is a positive number or 'all', not {value!r}")
    return n


def output_paths(video: str | os.PathLike, output_dir: str | os.PathLike | None) -> tuple[Path, Path]:
    """(npz, video) that reconstruct writes for ``video``: <name>_poses.npz and <name>_3d.mp4 in ``output_dir``."""
    folder = Path(output_dir) if output_dir is not None else DEFAULT_OUTPUT_DIR
    stem = Path(video).stem
    return folder / f"{stem}_poses.npz", folder / f"{stem}_3d.mp4"


DEFAULT_OUTPUT_DIR = Path("video3d_output")
__all__ = ["DEFAULT_OUTPUT_DIR", "DEFAULT_QUALITY", "FORMATS", "QUALITY", "ReconstructOptions", "WINDOW_MODES",
           "output_paths", "parse_persons"]
