"""The stages as library functions: ``detect`` -> ``lift`` -> ``place`` -> ``render``, and ``reconstruct`` (all
of them, with one ``ReconstructOptions``). Each stage takes a ``PoseResult`` and returns a new one (the one given
is left as it was); the video is probed once and its ``VideoInfo`` passed down. The CLI only parses options and
calls these; every option is a keyword here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .detector import PoseDetector
from .errors import InputError, Video3DError
from .geometry import fit_scale, normalize_screen_coordinates, rescale_about_root
from .io import check_output
from .layouts import coco17_to_h36m17
from .options import (DEFAULT_OUTPUT_DIR, DEFAULT_QUALITY, QUALITY, VIEW_AZIMUTH, VIEW_ELEVATION,  # noqa: F401
                      ReconstructOptions, output_paths)
from .progress import Progress, stage
from .repair import fix_left_right
from .results import PoseResult
from .sequence import PoseSequence
from .smoothing import DEFAULT_SMOOTHING, SMOOTHING
from .tracks import TrackBuilder, lifter_input, segments, select_persons, stitch_tracks, unseen_joints
from .video import (DecodeReport, VideoInfo, VideoWriter, frame_timestamps, is_constant_rate, probe,
                    read_frames)
from .world import estimate_roots, to_world

if TYPE_CHECKING:  # the lifters import torch, the renderer cv2: both where they are used, not at import
    from .lifters import Lifter

MIN_JOINTS_PRESENT = 9  # a frame counts as 'person seen' with at least this many H36M joints


class LifterOutputError(Video3DError):
    """The lifter's output is not finite for finite input: its weights are damaged."""

    exit_code = 2


def detect(video: str | os.PathLike | VideoInfo, detector: str | PoseDetector | None = None, persons: int | str = 1,
           device: str = "auto", min_keypoint_confidence: float = 0.3, min_track_frames: int = 5, strict: bool = False,
           progress: Progress | None = None, conf: float = 0.25, imgsz: int = 640, tile: bool = False) -> PoseResult:
    """Detect and track people; keep the selected ones. One row per decoded frame, nothing dropped.
    A video that decodes to fewer frames than its header declares, or with decoding errors, is truncated or
    damaged: ``strict`` makes that an InputError, otherwise it is one line in ``result.warnings``.
    ``video`` may be a path or the ``VideoInfo`` a caller probed already; ``detector`` a loaded ``PoseDetector``
    (kept open, for many videos; its own conf, imgsz and tile apply), else a model name or path, loaded with
    ``conf``, ``imgsz`` and ``tile`` (``detector.PoseDetector``)."""
    info = video if isinstance(video, VideoInfo) else probe(video)
    start = time.perf_counter()
    builder = TrackBuilder(min_confidence=min_keypoint_confidence)
    decoded = DecodeReport()
    if isinstance(detector, PoseDetector):
        detector.start_video(info.fps)
        owned = contextlib.nullcontext(detector)
    else:
        owned = PoseDetector(detector, device=device, fps=info.fps, conf=conf, imgsz=imgsz, tile=tile)
    with owned as det, stage(progress, "detect", info.frame_count) as bar:
        for frame in read_frames(info, decoded):
            builder.add(det.track(frame))
            bar.advance()
    damaged = decoded.problem(info)
    if damaged and strict:
        raise InputError(damaged + " (--strict)")
    tracks = stitch_tracks(builder.sequences(info.fps, info.frame_size), info.fps)
    selected = select_persons(tracks, persons, min_frames=min(min_track_frames, builder.num_frames))
    if not selected:
        raise InputError(f"no person was found in {info.path}")
    result = PoseResult([s for s, _ in selected], info.fps, info.frame_size, source=info.path.name)
    if damaged:
        result.warnings.append(damaged + "; the outputs hold the frames that decoded (--strict: fail instead)")
    result.timestamps = variable_timestamps(info, builder.num_frames)
    result.timings["detect"] = time.perf_counter() - start
    return result


def variable_timestamps(info: VideoInfo, frames: int) -> np.ndarray | None:
    """The frames' own times (s) if the video's frame rate varies, else None (frame i is at i / fps). Only when
    the container gives one time per decoded frame: otherwise frames could not be matched to times."""
    ts = frame_timestamps(info)
    if ts is None or len(ts) != frames or is_constant_rate(ts, info.fps):
        return None
    return ts


def to_h36m(seq: PoseSequence) -> PoseSequence:
    if seq.layout == "h36m17":
        return seq
    if seq.layout == "coco17":
        kp, conf = coco17_to_h36m17(seq.keypoints, seq.confidence)
        return PoseSequence(kp, conf, seq.fps, "h36m17", seq.track_id, seq.frame_size)
    raise InputError(f"cannot convert the {seq.layout} layout to h36m17")


def _smooth_2d(x: np.ndarray, filt, fps: float) -> np.ndarray:
    """Filter 2D pixels in units of the person's height, so one preset fits near and far people."""
    height = float(np.nanmedian(x[..., 1].max(-1) - x[..., 1].min(-1))) or 1.0
    return filt(x / height, fps) * height


@dataclass
class LifterInput:
    """One person's 2D as ``lift`` hands it to the lifter."""

    segments: dict[tuple[int, int], np.ndarray]  # (start, stop) -> normalised, rescaled 2D of the frames, (n, 17, 2)
    present: np.ndarray  # (T,) bool: frames with at least MIN_JOINTS_PRESENT joints
    scale: float  # the rescale factor (1: as detected)
    swapped: np.ndarray  # (T, 3) bool: the body's / legs' / arms' left/right labels exchanged (``video3d.repair``)
    joints_seen: np.ndarray  # (T, 17) bool: joints seen, or missing for at most max_gap frames (interpolated)


def lifter_inputs(person: PoseSequence, frame_size: tuple[int, int], fps: float, input_spread: float | None,
                  max_gap: int, smooth_2d=None, fix_swaps: bool = True) -> LifterInput:
    """Prepare one person's 2D for a lifter: left/right swaps repaired (``fix_swaps``), COCO -> H36M, the frames
    seen well enough split into segments (gaps of up to ``max_gap`` frames bridged), missing joints filled
    (interpolated over up to ``max_gap`` frames; joints unseen for longer guessed from the torso, ``joints_seen``
    False: ``tracks.guess_unseen``), the 2D filter ``smooth_2d`` applied, normalised by the frame width, and
    scaled about the pelvis to ``input_spread`` (None: not scaled). ``lift`` lifts exactly this;
    scripts/detector_errors.py records it."""
    swapped = np.zeros((person.num_frames, 3), bool)
    if fix_swaps:
        kp, conf, swapped = fix_left_right(person.keypoints, person.confidence, person.layout, max_gap=max_gap)
        person = person.with_(keypoints=kp, confidence=conf)
    seq = to_h36m(person)
    present = (~seq.missing).sum(1) >= MIN_JOINTS_PRESENT
    seen = seq.with_(keypoints=np.where(present[:, None, None], seq.keypoints, np.nan),
                     confidence=np.where(present[:, None], seq.confidence, 0.0))
    inputs = {}
    joints_seen = np.zeros(seq.missing.shape, bool)
    for s, e in segments(present, max_gap):
        unseen = unseen_joints(seen.missing[s:e], max_gap)
        joints_seen[s:e] = ~unseen
        x = lifter_input(seen, s, e, unseen)  # (e - s, 17, 2) pixels, filled, the long-unseen joints guessed
        if smooth_2d is not None:
            x = _smooth_2d(x, smooth_2d, fps)
        inputs[s, e] = normalize_screen_coordinates(x, *frame_size)
    scale = fit_scale(np.concatenate(list(inputs.values())), input_spread) if input_spread and inputs else 1.0
    return LifterInput({k: rescale_about_root(x, scale) for k, x in inputs.items()}, present, scale, swapped,
                       joints_seen)


def lift(result: PoseResult, lifter: str | Lifter = "gastnet", weights: str | os.PathLike | None = None,
         device: str = "auto", max_gap: float = 0.5, flip: bool = True, smooth: str = DEFAULT_SMOOTHING,
         rescale: bool = True, windows: str = "blend", fix_swaps: bool = True,
         progress: Progress | None = None) -> PoseResult:
    """Lift every person's 2D track to 3D: a new result with ``persons_3d`` (the one given is unchanged).
    Gaps up to ``max_gap`` seconds are bridged (and flagged as interpolated); longer ones split the track, and
    frames in them stay invalid (NaN). ``smooth`` names a preset of SMOOTHING (filters on the 2D before and/or
    the 3D after lifting). With ``rescale``, each person's 2D is scaled about the pelvis, one factor per person,
    to the typical size of the lifter's training input (``Lifter.input_spread``): the lifters take 2D normalised
    by the frame width, and a person smaller or larger in the frame than Human3.6M's actors otherwise gets a
    wrong pose (benchmarks/input_scale.py); the factors are kept in ``input_scale``. ``windows`` places a
    sequence-to-sequence lifter's windows (``Lifter.predict``: "blend", or "centre", one per frame as in the
    papers' protocol). With ``fix_swaps``, each person's left/right labels are made consistent over time first
    (``video3d.repair.fix_left_right``: short flips of the whole body, the legs or the arms are undone) in what
    is lifted (``persons_2d`` keeps the detector's labels; ``labels_swapped`` says where they were exchanged,
    and the rendered 2D is drawn that way); the frames changed are counted in ``swaps_fixed``.
    A person never seen well enough to lift is a warning; nobody at all, an InputError."""
    if smooth not in SMOOTHING:
        raise InputError(f"unknown smoothing {smooth!r}; choose from {', '.join(SMOOTHING)}")
    from .lifters import Lifter, create_lifter

    filt_2d, filt_3d = SMOOTHING[smooth]
    start = time.perf_counter()
    model = lifter if isinstance(lifter, Lifter) else create_lifter(lifter, weights=weights, device=device)
    if result.num_frames < model.receptive_field:
        raise InputError(f"the input has {result.num_frames} frames; the {model.name} lifter needs at least "
                         f"{model.receptive_field} (its receptive field)")
    gap = max(0, int(round(max_gap * result.fps)))
    persons_3d, prepared = [], []
    with stage(progress, "lift", result.num_persons * result.num_frames) as bar:
        for person in result.persons_2d:
            inp = lifter_inputs(person, result.frame_size, result.fps, model.input_spread if rescale else None, gap,
                                filt_2d, fix_swaps)
            out = np.full((person.num_frames, 17, 3), np.nan, np.float32)
            for (s, e), x in inp.segments.items():
                y = model.predict(x, flip=flip, windows=windows)
                if not np.isfinite(y).all():
                    where = f" ({model.weights_path})" if model.weights_path else ""
                    raise LifterOutputError(f"the {model.name} lifter gave non-finite 3D (NaN or inf) for finite "
                                            f"2D input: its weights{where} are damaged")
                out[s:e] = filt_3d(y, result.fps) if filt_3d is not None else y
            valid = np.isfinite(out[..., 0]).all(-1)
            # confidence 1: estimated from what was seen; 0: a joint the lifter had to guess (never NaN here, as
            # placing the person needs a whole skeleton; the outputs write such joints as missing)
            persons_3d.append(PoseSequence(out, (valid[:, None] & inp.joints_seen).astype(np.float32), result.fps,
                                           "h36m17", track_id=person.track_id))
            prepared.append(inp)
            bar.advance(person.num_frames)
    unseen = [int(p.track_id) for p, p3 in zip(result.persons_2d, persons_3d) if not p3.valid.any()]
    if len(unseen) == len(persons_3d):
        raise InputError(f"no frame has a person with at least {MIN_JOINTS_PRESENT} of the 17 joints: nothing to lift")
    notes = [f"track{'s' if len(unseen) > 1 else ''} {', '.join(map(str, unseen))}: never seen with "
             f"{MIN_JOINTS_PRESENT}+ joints, so no 3D (NaN in every frame)"] if unseen else []
    weights_name = Path(model.weights_path).name if model.weights_path else "untrained"
    return dataclasses.replace(
        result, persons_3d=persons_3d, world=None,
        input_scale=np.array([p.scale for p in prepared], np.float32),
        swaps_fixed=np.array([p.swapped.any(1).sum() for p in prepared], np.int64),
        labels_swapped=np.stack([p.swapped for p in prepared]),
        interpolated=np.stack([p3.valid & ~p.present for p, p3 in zip(prepared, persons_3d)]),
        lifter=f"{model.name} ({weights_name})" + (f", smoothing {smooth}" if smooth != "none" else ""),
        warnings=[*result.warnings, *notes], timings={**result.timings, "lift": time.perf_counter() - start})


def place(result: PoseResult, trajectory: bool = False, rebase: str = "ground", focal: float | None = None) -> PoseResult:
    """Put the lifted people into one upright world frame (see ``video3d.world``): the up direction and the
    floor estimated from the video, each person at their (approximate) position, moving if ``trajectory``,
    on a skeleton of constant bone lengths (their median; ``video3d.skeleton``). A new result with ``world``
    (the one given is unchanged)."""
    if not result.persons_3d:
        raise InputError("nothing to place: the poses are not lifted yet")
    poses = result.keypoints_3d()
    h36m = [to_h36m(p) for p in result.persons_2d]
    roots = estimate_roots([s.keypoints for s in h36m], poses, [s.confidence for s in h36m], result.frame_size,
                           result.fps, focal)
    # rigid: constant bone lengths, the skeleton that BVH export animates
    feet_seen = result.joints_seen()[..., [3, 6]]  # a guessed foot does not anchor the stance lock
    return dataclasses.replace(result, world=to_world(poses, roots, trajectory=trajectory, rebase=rebase, rigid=True,
                                                      fps=result.fps, feet_seen=feet_seen))


@dataclass
class Rendered:
    """What ``render`` wrote: the video, the seconds it took, and what the user should know (one line each)."""

    path: Path
    seconds: float
    warnings: list[str] = field(default_factory=list)


def render(video: str | os.PathLike | VideoInfo, result: PoseResult, output: str | os.PathLike, force: bool = False,
           azimuth: float = VIEW_AZIMUTH, elevation: float = VIEW_ELEVATION, quality: str = DEFAULT_QUALITY,
           preset: str | None = None,
           crf: int = 20, progress: Progress | None = None) -> Rendered:
    """Write the side-by-side video: exactly the input's frames, each at its own time (a variable frame rate
    is kept), with the input's audio. The 3D panel draws ``result.world`` (``place`` first: lifted poses that are
    not placed are an InputError). ``video`` may be a path or the ``VideoInfo`` a caller probed already.
    ``quality`` (a key of ``QUALITY``) picks the x264 preset; ``preset`` names one directly instead."""
    from .render import Scene3D, SideBySideRenderer

    if quality not in QUALITY:
        raise InputError(f"quality is one of {', '.join(QUALITY)}, not {quality!r}")
    if result.persons_3d and result.world is None:
        raise InputError("the 3D poses are not placed in a world frame yet (pipeline.place)")
    preset = preset or QUALITY[quality]
    start = time.perf_counter()
    info = video if isinstance(video, VideoInfo) else probe(video)
    check_output(output, force)
    if (info.width, info.height) != tuple(result.frame_size):
        raise InputError(f"the keypoints are for {result.frame_size[0]}x{result.frame_size[1]} frames, "
                         f"the video is {info.width}x{info.height}")
    T = result.num_frames
    check_frame_count(info, T, "the keypoints")
    timestamps = variable_timestamps(info, T)
    scene = Scene3D(result.seen_only(result.world.poses), list(result.track_ids)) if result.persons_3d else None
    # the 2D with the labels that were lifted, so both panels tell left from right alike
    kp2d = result.keypoints_2d(as_lifted=True)[..., :2] if result.num_persons else \
        np.zeros((0, result.num_frames, 17, 2))
    renderer = SideBySideRenderer(info.frame_size, kp2d, result.layout_2d, scene, azimuth, elevation, fps=info.fps)
    ow, oh = renderer.output_size
    notes = []
    if timestamps is not None:
        duration = float(timestamps[-1] + np.median(np.diff(timestamps)))
        rates = 1.0 / np.diff(timestamps)
        notes.append(f"variable frame rate ({rates.min():.3g}-{rates.max():.3g} fps): every output frame keeps its "
                     "input frame's time")
    else:
        duration = T / info.fps
    with VideoWriter(output, ow, oh, info.fps_fraction, audio_from=info, duration=duration, force=force,
                     timestamps=timestamps, preset=preset, crf=crf) as writer, stage(progress, "render", T) as bar:
        for t, frame in enumerate(read_frames(info)):
            if t >= T:
                raise InputError(f"{info.path} has more frames than the keypoints ({T}); were they made from it?")
            writer.write(renderer.render(frame, t))
            bar.advance()
        if writer.frames != T:
            raise InputError(f"{info.path} has {writer.frames} frames but the keypoints have {T}")
    return Rendered(Path(output), time.perf_counter() - start, notes)


def count_frames(info: VideoInfo) -> int | None:
    """The video's frames, counted exactly from its packets (no decoding); None if the container gives none."""
    ts = frame_timestamps(info)
    return None if ts is None else len(ts)


def check_frame_count(info: VideoInfo, frames: int, what: str) -> None:
    """Fail before any work if ``what`` (keypoints of ``frames`` frames) cannot be from this video: the header's
    count is checked first, then, if it differs (it is an estimate from the duration for most containers), the
    count of the video's packets. A damaged video can hold a packet or two that does not decode, so those may
    differ by 2; the frame-by-frame check while rendering is exact."""
    if info.frame_count == frames:
        return
    exact = count_frames(info)
    if exact is not None and abs(exact - frames) > 2:
        raise InputError(f"{what} have {frames} frames, {info.path} has {exact}; were they made from this video?")


@dataclass
class ReconstructOutputs:
    result: PoseResult
    npz: Path
    video: Path | None
    exports: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def reconstruct(video: str | os.PathLike, output_dir: str | os.PathLike | None = None,
                options: ReconstructOptions | None = None, keypoints: str | os.PathLike | None = None,
                force: bool = False, progress: Progress | None = None, **settings) -> ReconstructOutputs:
    """Video -> 2D tracks (or ``keypoints`` from a file) -> 3D -> npz (+ side-by-side video, + exports), with
    ``options`` (a ``ReconstructOptions``; default its defaults) and any of its fields as keywords on top
    (``reconstruct(video, lifter="stcformer", write_video=False)``). Checks the input, every output path, the
    lifter's weights and the keypoints' length before the long work starts, so that a run fails in seconds
    rather than after detection. The lifter and the detector may be loaded models (``Lifter``, ``PoseDetector``),
    reused across videos."""
    from .exports import check_exports
    from .importers import load_keypoints
    from .lifters import Lifter, create_lifter

    o = ReconstructOptions.of(options, **settings)
    npz_path, video_path = output_paths(video, output_dir)
    info = probe(video)  # bad input fails here, before anything else; the one probe of the video
    stem = npz_path.with_name(npz_path.stem.removesuffix("_poses"))
    for path in (npz_path, video_path) if o.write_video else (npz_path,):
        check_output(path, force)
    check_exports(stem, list(o.export), force)  # BVH files of any track id: the ids are not known yet
    model = o.lifter if isinstance(o.lifter, Lifter) else create_lifter(o.lifter, weights=o.weights, device=o.device)
    if info.frame_count is not None and info.frame_count < model.receptive_field:
        raise InputError(f"{info.path} has {info.frame_count} frames; the {model.name} lifter needs at least "
                         f"{model.receptive_field} (its receptive field)")
    if keypoints is not None:
        result = load_keypoints(keypoints, fps=info.fps, frame_size=info.frame_size)
        if tuple(result.frame_size) != info.frame_size:
            raise InputError(f"{keypoints} is for {result.frame_size[0]}x{result.frame_size[1]} frames, the video "
                             f"is {info.width}x{info.height}")
        check_frame_count(info, result.num_frames, str(keypoints))
        selected = select_persons([(p, _boxes_of(p)) for p in result.persons_2d], o.persons, min_frames=1)
        result = dataclasses.replace(result, persons_2d=[p for p, _ in selected])
    else:
        result = detect(info, detector=o.detector, persons=o.persons, device=o.device,
                        min_keypoint_confidence=o.min_keypoint_confidence, min_track_frames=o.min_track_frames,
                        strict=o.strict, progress=progress, conf=o.conf, imgsz=o.imgsz, tile=o.tile)
    result, extra = _lift_and_save(result, model, o, npz_path, stem, force, progress)
    out_video = None
    if o.write_video:
        rendered = render(info, result, video_path, force=force, quality=o.quality, progress=progress)
        out_video = rendered.path
        result = dataclasses.replace(result, warnings=[*result.warnings, *rendered.warnings],
                                     timings={**result.timings, "render": rendered.seconds})
    return ReconstructOutputs(result, npz_path, out_video, extra, dict(result.timings))


def lift_file(keypoints: str | os.PathLike, output: str | os.PathLike | None = None,
              options: ReconstructOptions | None = None, fps: float | None = None,
              frame_size: tuple[int, int] | None = None, force: bool = False, progress: Progress | None = None,
              **settings) -> ReconstructOutputs:
    """2D keypoints from a file (``importers.load_keypoints``: our npz, OpenPose, COCO JSON) -> 3D -> npz (default
    ``<name>_3d.npz`` beside the input) and the exports of ``options.export``; the lifting options as in
    ``reconstruct`` (those about the video, detection and rendering do not apply)."""
    from .exports import check_exports
    from .importers import load_keypoints
    from .lifters import Lifter, create_lifter

    o = ReconstructOptions.of(options, **settings)
    keypoints = Path(keypoints)
    name = keypoints.stem.removesuffix("_2d") if keypoints.is_file() else keypoints.name
    npz_path = Path(output) if output is not None else keypoints.with_name(f"{name}_3d.npz")
    check_output(npz_path, force)
    result = load_keypoints(keypoints, fps=fps, frame_size=frame_size)
    stem = npz_path.with_name(npz_path.stem)
    check_exports(stem, list(o.export), force, track_ids=result.track_ids)
    model = o.lifter if isinstance(o.lifter, Lifter) else create_lifter(o.lifter, weights=o.weights, device=o.device)
    result, extra = _lift_and_save(result, model, o, npz_path, stem, force, progress)
    return ReconstructOutputs(result, npz_path, None, extra, dict(result.timings))


def _lift_and_save(result: PoseResult, model: Lifter, o: ReconstructOptions, npz_path: Path, stem: Path, force: bool,
                   progress: Progress | None) -> tuple[PoseResult, list[Path]]:
    """lift -> place -> the npz -> the exports: the part ``reconstruct`` and ``lift_file`` share."""
    from .exports import export

    result = lift(result, model, max_gap=o.max_gap, smooth=o.smooth, rescale=o.rescale, windows=o.windows,
                  fix_swaps=o.fix_swaps, progress=progress)
    result = place(result, trajectory=o.trajectory, rebase=o.rebase)
    result.save_npz(npz_path, force=force)
    return result, export(result, stem, list(o.export), o.up, force)


def _boxes_of(seq: PoseSequence) -> np.ndarray:
    """(T, 4) boxes around the seen keypoints (for choosing the main people of imported keypoints)."""
    kp = seq.keypoints
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames give NaN boxes
        lo, hi = np.nanmin(kp, axis=1), np.nanmax(kp, axis=1)
    return np.concatenate([lo, hi], axis=-1).astype(np.float32)
