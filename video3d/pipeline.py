"""The stages as library functions: ``detect`` -> ``lift`` -> ``render``, and ``reconstruct`` (all three).
The CLI only parses options and calls these; every option is a keyword here.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .detector import PoseDetector
from .errors import InputError
from .geometry import normalize_screen_coordinates, solve_translation
from .io import check_output
from .layouts import H36M17, coco17_to_h36m17
from .lifters import Lifter, create_lifter
from .progress import Progress, stage
from .render import Scene3D, SideBySideRenderer
from .results import PoseResult
from .sequence import PoseSequence
from .tracks import TrackBuilder, lifter_input, segments, select_persons, stitch_tracks
from .video import VideoWriter, probe, read_frames

DEFAULT_OUTPUT_DIR = Path("video3d_output")
MIN_JOINTS_PRESENT = 9  # a frame counts as 'person seen' with at least this many H36M joints


def detect(video: str | os.PathLike, detector: str | None = None, persons: int | str = 1, device: str = "auto",
           min_keypoint_confidence: float = 0.3, min_track_frames: int = 5,
           progress: Progress | None = None) -> PoseResult:
    """Detect and track people; keep the selected ones. One row per decoded frame, nothing dropped."""
    info = probe(video)
    start = time.perf_counter()
    builder = TrackBuilder(min_confidence=min_keypoint_confidence)
    with PoseDetector(detector, device=device, fps=info.fps) as det, \
            stage(progress, "detect", info.frame_count) as bar:
        for frame in read_frames(info):
            builder.add(det.track(frame))
            bar.advance()
    tracks = stitch_tracks(builder.sequences(info.fps, info.frame_size), info.fps)
    selected = select_persons(tracks, persons, min_frames=min(min_track_frames, builder.num_frames))
    if not selected:
        raise InputError(f"no person was found in {info.path}")
    result = PoseResult([s for s, _ in selected], info.fps, info.frame_size, source=info.path.name)
    result.timings["detect"] = time.perf_counter() - start
    return result


def to_h36m(seq: PoseSequence) -> PoseSequence:
    if seq.layout == "h36m17":
        return seq
    if seq.layout == "coco17":
        kp, conf = coco17_to_h36m17(seq.keypoints, seq.confidence)
        return PoseSequence(kp, conf, seq.fps, "h36m17", seq.track_id, seq.frame_size)
    raise InputError(f"cannot convert the {seq.layout} layout to h36m17")


def lift(result: PoseResult, lifter: str | Lifter = "gastnet", weights: str | os.PathLike | None = None,
         device: str = "auto", max_gap: float = 0.5, flip: bool = True,
         progress: Progress | None = None) -> PoseResult:
    """Lift every person's 2D track to 3D. Gaps up to ``max_gap`` seconds are bridged (and flagged as
    interpolated); longer ones split the track, and frames in them stay invalid (NaN)."""
    start = time.perf_counter()
    model = lifter if isinstance(lifter, Lifter) else create_lifter(lifter, weights=weights, device=device)
    rf = model.receptive_field
    if result.num_frames < rf:
        raise InputError(f"the input has {result.num_frames} frames; the {model.name} lifter needs at least {rf} "
                         f"(its receptive field)")
    w, h = result.frame_size
    gap = max(0, int(round(max_gap * result.fps)))
    persons_3d, interpolated = [], []
    with stage(progress, "lift", result.num_persons * result.num_frames) as bar:
        for person in result.persons_2d:
            seq = to_h36m(person)
            present = (~seq.missing).sum(1) >= MIN_JOINTS_PRESENT
            out = np.full((seq.num_frames, 17, 3), np.nan, np.float32)
            for s, e in segments(present, gap):
                x = lifter_input(seq.with_(keypoints=np.where(present[:, None, None], seq.keypoints, np.nan),
                                           confidence=np.where(present[:, None], seq.confidence, 0.0)), s, e)
                out[s:e] = model.predict(normalize_screen_coordinates(x, w, h), flip=flip)
            valid = np.isfinite(out[..., 0]).all(-1)
            persons_3d.append(PoseSequence(out, valid[:, None].repeat(17, 1).astype(np.float32), result.fps,
                                           "h36m17", track_id=person.track_id))
            interpolated.append(valid & ~present)
            bar.advance(seq.num_frames)
    result.persons_3d = persons_3d
    result.interpolated = np.stack(interpolated) if interpolated else np.zeros((0, result.num_frames), bool)
    weights_name = Path(model.weights_path).name if model.weights_path else "untrained"
    result.lifter = f"{model.name} ({weights_name})"
    result.timings["lift"] = time.perf_counter() - start
    return result


def person_offsets(result: PoseResult, focal: float | None = None) -> np.ndarray | None:
    """(P, T, 3) camera-space placement of each person for the 3D view: each person's mean root
    position relative to the group's mean (approximate: the focal length is assumed, ~53 degrees)."""
    if not result.persons_3d or result.num_persons < 2:
        return None
    w, h = result.frame_size
    f = focal or float(max(w, h))
    means = []
    for p2, p3 in zip(result.persons_2d, result.persons_3d):
        kp = to_h36m(p2)
        t = solve_translation(kp.keypoints, p3.keypoints, f, (w / 2, h / 2), kp.confidence)
        means.append(np.nanmedian(t, axis=0) if np.isfinite(t).any() else np.zeros(3))
    means = np.nan_to_num(np.array(means))
    rel = means - means.mean(0)
    return np.broadcast_to(rel[:, None, :], (result.num_persons, result.num_frames, 3)).astype(np.float32)


def render(video: str | os.PathLike, result: PoseResult, output: str | os.PathLike, force: bool = False,
           azimuth: float = 45.0, elevation: float = 15.0, progress: Progress | None = None) -> Path:
    """Write the side-by-side video: exactly the input's frames and frame rate, with its audio."""
    start = time.perf_counter()
    info = probe(video)
    check_output(output, force)
    if (info.width, info.height) != tuple(result.frame_size):
        raise InputError(f"the keypoints are for {result.frame_size[0]}x{result.frame_size[1]} frames, "
                         f"the video is {info.width}x{info.height}")
    scene = None
    if result.persons_3d:
        scene = Scene3D.from_camera_space(result.keypoints_3d(), list(result.track_ids), person_offsets(result))
    kp2d = result.keypoints_2d()[..., :2] if result.num_persons else np.zeros((0, result.num_frames, 17, 2))
    renderer = SideBySideRenderer(info.frame_size, kp2d, result.layout_2d, scene, azimuth, elevation)
    ow, oh = renderer.output_size
    T = result.num_frames
    with VideoWriter(output, ow, oh, info.fps_fraction, audio_from=info, duration=T / info.fps, force=force) as writer, \
            stage(progress, "render", T) as bar:
        for t, frame in enumerate(read_frames(info)):
            if t >= T:
                raise InputError(f"{info.path} has more frames than the keypoints ({T}); were they made from it?")
            writer.write(renderer.render(frame, t))
            bar.advance()
        if writer.frames != T:
            raise InputError(f"{info.path} has {writer.frames} frames but the keypoints have {T}")
    result.timings["render"] = time.perf_counter() - start
    return Path(output)


@dataclass
class ReconstructOutputs:
    result: PoseResult
    npz: Path
    video: Path | None
    timings: dict[str, float] = field(default_factory=dict)


def output_paths(video: str | os.PathLike, output_dir: str | os.PathLike | None) -> tuple[Path, Path]:
    folder = Path(output_dir) if output_dir is not None else DEFAULT_OUTPUT_DIR
    stem = Path(video).stem
    return folder / f"{stem}_poses.npz", folder / f"{stem}_3d.mp4"


def reconstruct(video: str | os.PathLike, output_dir: str | os.PathLike | None = None, lifter: str = "gastnet",
                weights: str | os.PathLike | None = None, detector: str | None = None, persons: int | str = 1,
                device: str = "auto", write_video: bool = True, force: bool = False,
                progress: Progress | None = None) -> ReconstructOutputs:
    """Video -> 2D tracks -> 3D -> npz (+ side-by-side video). Checks the outputs can be written and the
    lifter's weights exist before the long work starts."""
    npz_path, video_path = output_paths(video, output_dir)
    info = probe(video)  # bad input fails here, before anything else
    check_output(npz_path, force)
    if write_video:
        check_output(video_path, force)
    model = create_lifter(lifter, weights=weights, device=device)
    if info.frame_count is not None and info.frame_count < model.receptive_field:
        raise InputError(f"{info.path} has {info.frame_count} frames; the {model.name} lifter needs at least "
                         f"{model.receptive_field} (its receptive field)")
    result = detect(video, detector=detector, persons=persons, device=device, progress=progress)
    lift(result, model, device=device, progress=progress)
    result.save_npz(npz_path, force=force)
    out_video = render(video, result, video_path, force=force, progress=progress) if write_video else None
    return ReconstructOutputs(result, npz_path, out_video, dict(result.timings))
