"""The ``video3d`` command line: parse options, call one library function, report.

Errors a user can fix are printed as one line on stderr with a non-zero exit code (2: bad input,
3: output problem, 4: detector problem, 1: other); set VIDEO3D_DEBUG=1 to see tracebacks.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
import typer.rich_utils
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from . import __version__
from .detector import DEFAULT_DETECTOR, DETECTOR_ENV
from .errors import Video3DError
from .options import VIEW_AZIMUTH, VIEW_ELEVATION
from .signals import Terminated, check_signals, handle_signals, pending_signal
from .smoothing import DEFAULT_SMOOTHING, SMOOTHING

# Help piped into a file or a pager: rich would fall back to 80 columns and cut long values with an ellipsis. Wide
# enough that no option name or default is cut; a terminal keeps its own width, and COLUMNS / TERMINAL_WIDTH win.
PIPED_HELP_WIDTH = 120
if typer.rich_utils.MAX_WIDTH is None and not os.environ.get("COLUMNS") and not sys.stdout.isatty():
    typer.rich_utils.MAX_WIDTH = PIPED_HELP_WIDTH

err_console = Console(stderr=True)
out_console = Console()


def untyped_flags(params: list) -> list:
    """Typer's rich help prints a type, "<bool>", beside every flag (--force, --no-video, --help) as if it took a
    value: a flag shows none."""
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    return params


class Command(TyperCommand):
    """Every command of the CLI: its help shows flags without a type."""

    def get_params(self, ctx) -> list:
        return untyped_flags(super().get_params(ctx))


class OneLineErrors(TyperGroup):
    """Report usage errors (a missing file, a bad option) as one line on stderr, not a panel."""

    def get_params(self, ctx) -> list:
        return untyped_flags(super().get_params(ctx))

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False,
                              **extra)
            code = rv if isinstance(rv, int) else 0
        except typer.TyperException as exc:  # usage errors: missing file, bad option value, unknown option
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            typer.echo(f"error: {exc.format_message()}{hint}", err=True)
            code = exc.exit_code
        except (typer.Abort, KeyboardInterrupt):
            typer.echo("interrupted", err=True)
            code = 130
        except Terminated as exc:
            typer.echo(f"terminated by {exc.name}", err=True)
            code = 128 + exc.signum
        lost = pending_signal()
        if lost is not None and code == 0:  # a signal lost where nothing checked for it: still not a success
            typer.echo(f"terminated by {signal.Signals(lost).name}", err=True)
            code = 128 + lost
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    cls=OneLineErrors,
    help="3D human pose from ordinary video: detect and track people in 2D, lift to 3D, render side by side.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

class Precision(str, Enum):
    fp32 = "fp32"
    tf32 = "tf32"
    bf16 = "bf16"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


# --- shared options ----------------------------------------------------------------------------
def export_formats(value) -> tuple[str, ...]:
    """'json,bvh' -> ("json", "bvh") (a Typer parser: a bad name is a usage error)."""
    from .exports import parse_formats

    if isinstance(value, tuple):  # the default
        return value
    try:
        return tuple(parse_formats(value))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def frame_size_value(value) -> tuple[int, int] | None:
    """'1920x1080' -> (1920, 1080) (a Typer parser)."""
    if value is None or isinstance(value, tuple):
        return value
    try:
        w, h = (int(v) for v in value.lower().split("x"))
        if w > 0 and h > 0:
            return w, h
    except ValueError:
        pass
    raise typer.BadParameter(f"{value!r} is not WIDTHxHEIGHT")


def options_from(params: dict):
    """The ``ReconstructOptions`` of a command's parsed parameters, which are named as its fields (enums give
    their values; ``--no-video`` is ``write_video``); the command's other parameters are left out."""
    from .options import ReconstructOptions

    names = set(ReconstructOptions.names())
    values = {k: v.value if isinstance(v, Enum) else v for k, v in params.items() if k in names}
    if "no_video" in params:
        values["write_video"] = not params["no_video"]
    return run(ReconstructOptions.of, **values)


def parse_lifter(value: str) -> str:
    """A registered lifter's name. The registry is read here, when a command runs, not when the CLI starts: it
    imports the models, and so torch (seconds), which --help and most errors do not need."""
    from .lifters import list_lifters

    if value not in list_lifters():
        raise typer.BadParameter(f"unknown lifter {value!r}; valid lifters: {', '.join(list_lifters())}")
    return value


LifterOpt = Annotated[str, typer.Option("--lifter", parser=parse_lifter, help=(
    "2D-to-3D lifter (`video3d lifters` lists them)."))]
WeightsOpt = Annotated[Optional[Path], typer.Option(
    "--weights", exists=True, dir_okay=False, help="Lifter checkpoint; default: the shipped weights/<lifter>_<frames>f.pt.")]
DeviceOpt = Annotated[Device, typer.Option("--device", help="Where the networks run: auto picks cuda when available.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite existing output files.")]
DetectorOpt = Annotated[Optional[str], typer.Option(
    "--detector", envvar=DETECTOR_ENV, show_default=False,
    help=f"YOLO pose model: an ultralytics model name (downloaded once to ~/.cache/video3d) or a local path "
         f"(.pt file or export folder). Default: {DEFAULT_DETECTOR}.")]
ConfOpt = Annotated[float, typer.Option("--conf", min=0.01, max=1.0, help=(
    "Detection score that starts or continues a track (down to 0.1 a detection only continues one). Lower it "
    "for small or far people (more false detections)."))]
ImgszOpt = Annotated[int, typer.Option("--imgsz", min=32, max=4096, help=(
    "Detector input size in pixels, a multiple of 32 (a .pt model: larger finds smaller people, slower; an "
    "export with a fixed input size has only its own)."))]
TileOpt = Annotated[bool, typer.Option("--tile/--no-tile", help=(
    "Also detect on overlapping crops of --imgsz frame pixels and merge: finds small people in large frames "
    "(one more detector pass per crop)."))]


def persons_value(value) -> int | str:
    """'3' -> 3, 'all' -> 'all' (a Typer parser: anything else is a usage error)."""
    from .errors import InputError
    from .options import parse_persons

    try:
        return parse_persons(value)
    except InputError as exc:
        raise typer.BadParameter(str(exc).removeprefix("persons is ")) from None


PersonsOpt = Annotated[object, typer.Option(
    "--persons", parser=persons_value, metavar="N|all",
    help="How many people: 1 = the main subject (the longest, largest track), N = the N main ones, or 'all'.")]


class Rebase(str, Enum):
    ground = "ground"
    sequence = "sequence"
    frame = "frame"
    none = "none"


class Up(str, Enum):
    y = "y"
    z = "z"


Smooth = Enum("Smooth", {name: name for name in SMOOTHING}, type=str)

SmoothOpt = Annotated[Smooth, typer.Option("--smooth", help=(
    "Temporal smoothing: light = One-Euro on the 3D (keeps fast motion), strong = One-Euro on the 2D and "
    "the 3D, savgol = Savitzky-Golay on the 3D, none."))]
RescaleOpt = Annotated[bool, typer.Option("--rescale/--no-rescale", help=(
    "Scale each person's 2D about the pelvis to the typical size the lifter was trained on (a person smaller "
    "or larger in the frame than Human3.6M's actors otherwise gets a wrong 3D pose)."))]
FixSwapsOpt = Annotated[bool, typer.Option("--fix-swaps/--no-fix-swaps", help=(
    "Before lifting, undo the detector's short left/right flips (the whole body, the legs or the arms swapped for "
    "a few frames), so each person's labelling is consistent over time; off: lift the labels as detected."))]
TrajectoryOpt = Annotated[bool, typer.Option("--trajectory/--no-trajectory", help=(
    "Move people through the 3D scene along their (approximate) estimated path; off: each stays at their "
    "median place."))]
RebaseOpt = Annotated[Rebase, typer.Option("--rebase", help=(
    "Floor: ground = the supporting foot on z=0 in every frame (a short jump stays a jump); sequence = one "
    "height per person for the whole video; frame = the lowest joint of every frame on z=0; none = heights as "
    "estimated."))]
ExportOpt = Annotated[object, typer.Option("--export", parser=export_formats, metavar="FORMATS", help=(
    "Comma-separated formats to write: npz (always), json, csv, bvh (one BVH per person)."))]
UpOpt = Annotated[Up, typer.Option("--up", help="BVH up axis: y (the BVH convention) or z.")]


class Windows(str, Enum):
    blend = "blend"
    centre = "centre"


WindowsOpt = Annotated[Windows, typer.Option("--windows", help=(
    "Sequence-to-sequence lifters (stcformer): blend = windows a third of a window apart, every output used, "
    "weighted to each window's centre (fast); centre = one window per frame, its centre output only (the papers' "
    "protocol)."))]
class Dataset(str, Enum):
    h36m = "h36m"
    humaneva = "humaneva"


class Quality(str, Enum):
    balanced = "balanced"
    fast = "fast"


QualityOpt = Annotated[Quality, typer.Option("--quality", help=(
    "Output video encoding, x264 at the same visual quality (crf 20): balanced = preset veryfast; fast = "
    "ultrafast (renders about 1.2x as fast, about 4x the file)."))]
NoVideoOpt = Annotated[bool, typer.Option("--no-video", help="Write the keypoints only, no rendered video.")]
StrictOpt = Annotated[bool, typer.Option("--strict", help=(
    "Fail (exit 2) on a truncated or damaged video instead of warning and keeping the frames that decode."))]


# --- progress and errors -------------------------------------------------------------------------
class RateColumn(ProgressColumn):
    """The recent rate while a stage runs; once it is done, its mean over the stage (as the summary gives it:
    rich's own estimate leaves out the time before the first step, e.g. loading the detector)."""

    def render(self, task) -> Text:
        speed = task.completed / task.finished_time if task.finished and task.finished_time else task.speed
        return Text(f"{speed:6.1f} {task.fields.get('unit', 'frames')}/s" if speed else "", style="cyan")


class RichProgress:
    """The library's Progress protocol on a rich progress bar (stderr)."""

    def __init__(self, console: Console = err_console, unit: str = "frames"):
        self.unit = unit
        self.bar = Progress(TextColumn("{task.description:>9}"), BarColumn(), MofNCompleteColumn(),
                            TaskProgressColumn(), RateColumn(), TimeElapsedColumn(), TextColumn("eta"),
                            TimeRemainingColumn(), console=console, transient=False)
        self.task = None

    def start(self, stage: str, total: int | None) -> None:
        self.bar.start()
        self.task = self.bar.add_task(stage, total=total, unit=self.unit)

    def advance(self, n: int = 1) -> None:
        self.bar.advance(self.task, n)

    def stop(self) -> None:
        if self.task is not None:
            task = self.bar.tasks[-1]
            self.bar.update(self.task, total=task.completed)
        self.bar.stop()


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"error: {message}", style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run(fn, *args, **kwargs):
    """Call a library function; turn a user-fixable error into one line on stderr and an exit code."""
    try:
        return fn(*args, **kwargs)
    except Video3DError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:  # a bug: say so in one line, traceback on request
        if os.environ.get("VIDEO3D_DEBUG"):
            raise
        fail(f"internal error: {type(exc).__name__}: {exc} (set VIDEO3D_DEBUG=1 for the traceback)", 1)


def summary(result, outputs: list[Path], lifted: bool = True) -> None:
    """The stages' times, the people, the warnings and, where this command lifted (``lifted``), how each
    person's 2D was prepared; then the files written (stdout)."""
    table = Table(title="video3d", show_header=True, header_style="bold")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("frames/s", justify="right")
    for name, seconds in result.timings.items():
        rate = result.num_frames / seconds if seconds > 0 else float("nan")
        table.add_row(name, f"{seconds:.1f}", f"{rate:.1f}")
    err_console.print(table)
    err_console.print(f"{result.num_frames} frames at {result.fps:g} fps, {result.num_persons} "
                      f"person{'s' if result.num_persons != 1 else ''} (track ids "
                      f"{', '.join(str(i) for i in result.track_ids)})", highlight=False)
    for line in result.warnings:
        err_console.print(f"warning: {line}", style="yellow", markup=False, highlight=False, soft_wrap=True)
    if lifted and result.input_scale is not None:
        for track, factor in zip(result.track_ids, result.input_scale):
            if factor != 1.0:
                err_console.print(f"track {track}: 2D scaled x{factor:.2f} to the lifter's training size "
                                  "(--no-rescale: as detected)", highlight=False, soft_wrap=True)
    if lifted and result.swaps_fixed is not None:
        for track, frames in zip(result.track_ids, result.swaps_fixed):
            if frames:
                err_console.print(f"track {track}: left/right labels exchanged in {frames} frame"
                                  f"{'s' if frames != 1 else ''} to undo the detector's flips (--no-fix-swaps: as "
                                  "detected)", highlight=False, soft_wrap=True)
    for path in outputs:
        out_console.print(str(path), highlight=False)


# --- commands --------------------------------------------------------------------------------------
@app.command(cls=Command)
def reconstruct(
    video: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Input video (any format ffmpeg reads).")],
    output_dir: Annotated[Optional[Path], typer.Option(
        "--output-dir", "-o", help="Output folder (made when the first file is written); default ./video3d_output. "
                                   "Files are named after the input: <name>_poses.npz, <name>_3d.mp4.")] = None,
    lifter: LifterOpt = "gastnet",
    weights: WeightsOpt = None,
    detector: DetectorOpt = None,
    conf: ConfOpt = 0.25,
    imgsz: ImgszOpt = 640,
    tile: TileOpt = False,
    persons: PersonsOpt = "1",
    device: DeviceOpt = Device.auto,
    no_video: NoVideoOpt = False,
    keypoints: Annotated[Optional[Path], typer.Option("--keypoints", exists=True, help=(
        "Skip detection: 2D keypoints from an npz (e.g. `video3d detect`), an OpenPose output folder (BODY_25 or "
        "COCO-18) or a COCO-format JSON file."))] = None,
    smooth: SmoothOpt = Smooth(DEFAULT_SMOOTHING),
    rescale: RescaleOpt = True,
    fix_swaps: FixSwapsOpt = True,
    trajectory: TrajectoryOpt = True,
    rebase: RebaseOpt = Rebase.ground,
    export: ExportOpt = "npz",
    up: UpOpt = Up.y,
    force: ForceOpt = False,
    windows: WindowsOpt = Windows.blend,
    strict: StrictOpt = False,
    quality: QualityOpt = Quality.balanced,
) -> None:
    """Video -> 2D keypoints -> 3D poses -> side-by-side video and npz (detect + lift + render)."""
    from .pipeline import reconstruct as reconstruct_fn

    options = options_from(locals())
    out = run(reconstruct_fn, video, output_dir, options, keypoints=keypoints, force=force, progress=RichProgress())
    summary(out.result, [p for p in (out.npz, *out.exports, out.video) if p is not None])


@app.command(cls=Command)
def batch(
    inputs: Annotated[list[str], typer.Argument(help=(
        "Videos, folders (searched recursively for videos) and glob patterns (quote them: 'clips/**/*.mp4').")
    )],
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help=(
        "Output folder: each video's files (as reconstruct names them, under its sub-folder) and manifest.jsonl."))],
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", min=1, help=(
        "Videos at once (worker processes, each loading the models once). Default: one per 2 cores; with --ray, "
        "the cluster's CPUs / --threads.")
    )] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help=(
        "Cores per worker (jobs x threads <= cores). Default: cores / jobs; 1 per Ray task.")
    )] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help=(
        "Run again the videos that failed before (otherwise a rerun skips them, like the finished ones).")
    )] = False,
    ray: Annotated[bool, typer.Option("--ray", help=(
        "Run the videos as Ray tasks (pip install 'video3d[ray]'); outputs must be on a path every node sees.")
    )] = False,
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help=(
        "Ray cluster to join (e.g. ray://head:10001 or 'auto'); default: a local Ray.")
    )] = None,
    gpus: Annotated[float, typer.Option("--gpus", min=0, help="GPUs per Ray task (fractions allowed).")] = 0.0,
    lifter: LifterOpt = "gastnet",
    weights: WeightsOpt = None,
    detector: DetectorOpt = None,
    conf: ConfOpt = 0.25,
    imgsz: ImgszOpt = 640,
    tile: TileOpt = False,
    persons: PersonsOpt = "1",
    device: DeviceOpt = Device.auto,
    no_video: NoVideoOpt = False,
    smooth: SmoothOpt = Smooth(DEFAULT_SMOOTHING),
    rescale: RescaleOpt = True,
    fix_swaps: FixSwapsOpt = True,
    trajectory: TrajectoryOpt = True,
    rebase: RebaseOpt = Rebase.ground,
    export: ExportOpt = "npz",
    up: UpOpt = Up.y,
    force: Annotated[bool, typer.Option("--force", help=(
        "Overwrite outputs the batch did not write itself (its own it replaces when it redoes a video).")
    )] = False,
    windows: WindowsOpt = Windows.blend,
    strict: StrictOpt = False,
    quality: QualityOpt = Quality.balanced,
) -> None:
    """Reconstruct many videos: resumable (manifest.jsonl), failures recorded and skipped, on this machine or Ray."""
    from .batch import FAILED_EXIT_CODE, run as batch_fn

    options = options_from(locals())
    report = run(batch_fn, inputs, output_dir, options, jobs=jobs, backend="ray" if ray or ray_address else "process",
                 threads=threads, retry_failed=retry_failed, force=force, ray_address=ray_address, num_gpus=gpus,
                 progress=BatchBar())
    batch_summary(report, output_dir)
    if report.failed:
        raise typer.Exit(FAILED_EXIT_CODE)


class BatchBar:
    """One bar for the batch (frames of the videos to run, with ETA; videos done / all) and the videos in flight."""

    def __init__(self, console: Console = err_console):
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), RateColumn(),
                            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                            TextColumn("{task.fields[current]}", style="dim"), console=console)
        self.task = None
        self.videos = self.finished = 0
        self.current: list[str] = []

    def _describe(self) -> str:
        return f"{self.finished}/{self.videos} videos"

    def start(self, videos: int, frames: int | None) -> None:
        self.videos = videos
        self.bar.start()
        self.task = self.bar.add_task(self._describe(), total=frames, current="", unit="frames")

    def video_started(self, job) -> None:
        self.current.append(job.name)
        self.bar.update(self.task, current=", ".join(self.current))

    def video_finished(self, outcome, frames: int) -> None:
        self.finished += 1
        if outcome.job.name in self.current:
            self.current.remove(outcome.job.name)
        self.bar.update(self.task, advance=frames, description=self._describe(), current=", ".join(self.current))

    def stop(self) -> None:
        self.bar.stop()


def batch_summary(report, output_dir: Path) -> None:
    table = Table(title=f"video3d batch ({report.backend}, {report.jobs} worker{'s' if report.jobs != 1 else ''})",
                  header_style="bold")
    for col in ("status", "videos"):
        table.add_column(col)
    for status in ("done", "skipped", "failed", "skipped-failed"):
        if report.count(status):
            table.add_row({"skipped": "done before (skipped)", "skipped-failed": "failed before (skipped; "
                           "--retry-failed)"}.get(status, status), str(report.count(status)))
    err_console.print(table)
    videos = len(report.outcomes)
    err_console.print(f"{report.count('done')} of {videos} video{'s' if videos != 1 else ''} reconstructed in "
                      f"{report.seconds:.0f} s ({report.videos_per_minute:.1f} videos/min); manifest: "
                      f"{output_dir / 'manifest.jsonl'}", highlight=False, soft_wrap=True)
    for outcome in report.failed:
        where = "" if str(outcome.job.input) in outcome.error else f"{outcome.job.input}: "
        err_console.print(f"failed: {where}{outcome.error}", style="red", markup=False,
                          highlight=False, soft_wrap=True)


@app.command(cls=Command)
def detect(
    video: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Input video.")],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", dir_okay=False, help="Output npz; default ./video3d_output/<name>_2d.npz.")] = None,
    detector: DetectorOpt = None,
    conf: ConfOpt = 0.25,
    imgsz: ImgszOpt = 640,
    tile: TileOpt = False,
    persons: PersonsOpt = "1",
    device: DeviceOpt = Device.auto,
    force: ForceOpt = False,
    strict: StrictOpt = False,
) -> None:
    """2D only: detect and track people, write their COCO-17 keypoints (npz)."""
    from .io import check_output
    from .pipeline import DEFAULT_OUTPUT_DIR, detect as detect_fn

    output = output or DEFAULT_OUTPUT_DIR / f"{video.stem}_2d.npz"
    run(check_output, output, force)
    result = run(detect_fn, video, detector=detector, persons=persons, device=device.value, strict=strict,
                 progress=RichProgress(), conf=conf, imgsz=imgsz, tile=tile)
    run(result.save_npz, output, force=force)
    summary(result, [output])


@app.command(cls=Command)
def lift(
    keypoints: Annotated[Path, typer.Argument(exists=True, help=(
        "2D keypoints: an npz with keypoints_2d ((P,) T, J, 2 or 3), layout_2d (coco17 or h36m17) and frame_size "
        "(w, h), e.g. from `video3d detect`; an OpenPose output folder; or a COCO-format JSON file."))],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", dir_okay=False, help="Output npz; default <input>_3d.npz beside the input.")] = None,
    lifter: LifterOpt = "gastnet",
    weights: WeightsOpt = None,
    device: DeviceOpt = Device.auto,
    fps: Annotated[Optional[float], typer.Option("--fps", min=0.001, help="Frame rate, if the input has none.")] = None,
    frame_size: Annotated[Optional[object], typer.Option("--frame-size", parser=frame_size_value, metavar="WxH", help=(
        "WIDTHxHEIGHT of the frames, if the input has none (OpenPose).")
    )] = None,
    smooth: SmoothOpt = Smooth(DEFAULT_SMOOTHING),
    rescale: RescaleOpt = True,
    fix_swaps: FixSwapsOpt = True,
    trajectory: TrajectoryOpt = True,
    rebase: RebaseOpt = Rebase.ground,
    export: ExportOpt = "npz",
    up: UpOpt = Up.y,
    force: ForceOpt = False,
    windows: WindowsOpt = Windows.blend,
) -> None:
    """2D -> 3D: lift keypoints from any source to 3D poses (npz, and other formats with --export)."""
    from .pipeline import lift_file

    options = options_from(locals())
    out = run(lift_file, keypoints, output, options, fps=fps, frame_size=frame_size, force=force,
              progress=RichProgress())
    summary(out.result, [out.npz, *out.exports])


@app.command("export", cls=Command)
def export_cmd(
    poses: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="npz from `video3d lift` or `reconstruct`.")],
    formats: Annotated[object, typer.Option("--format", "-f", parser=export_formats, metavar="FORMATS",
                                            help="Comma-separated: json, csv, bvh.")] = ("bvh",),
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help=(
        "Output path without extension (BVH adds _<track id>); default beside the npz.")
    )] = None,
    up: UpOpt = Up.y,
    trajectory: TrajectoryOpt = True,
    rebase: RebaseOpt = Rebase.ground,
    force: ForceOpt = False,
) -> None:
    """Convert saved poses to BVH (opens in Blender), JSON or CSV."""
    from .exports import export as export_fn, skipped_people
    from .errors import InputError
    from .pipeline import place
    from .results import load_npz

    chosen = [f for f in formats if f != "npz"]
    if not chosen:
        raise typer.BadParameter("the poses are an npz already; choose json, csv or bvh", param_hint="'--format'")
    result = run(load_npz, poses)
    if not result.persons_3d:
        fail(f"{poses} holds 2D keypoints only; lift them first (video3d lift)", InputError.exit_code)
    if result.world is None:  # an npz of lifted poses not yet placed (older files): place them as asked
        result = run(place, result, trajectory=trajectory, rebase=rebase.value)
    stem = output or poses.with_name(poses.stem.removesuffix("_poses"))
    paths = run(export_fn, result, stem, chosen, up.value, force)
    skipped = skipped_people(result)
    if skipped:
        err_console.print(f"warning: no valid 3D pose for track{'s' if len(skipped) > 1 else ''} "
                          f"{', '.join(map(str, skipped))}: nothing exported for them", style="yellow",
                          markup=False, highlight=False, soft_wrap=True)
    for path in paths:
        out_console.print(str(path), highlight=False)


@app.command(cls=Command)
def render(
    video: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The video the poses were made from.")],
    poses: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="npz from `video3d lift` or `reconstruct`.")],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", dir_okay=False, help="Output video; default ./video3d_output/<name>_3d.mp4.")] = None,
    azimuth: Annotated[float, typer.Option("--azimuth", help=(
        "3D view: degrees around the vertical axis; -90 = from the video's camera, 0 = from its right, 90 = from "
        "behind the people."))] = VIEW_AZIMUTH,
    elevation: Annotated[float, typer.Option("--elevation", help="3D view: degrees above the floor.")] = VIEW_ELEVATION,
    quality: QualityOpt = Quality.balanced,
    force: ForceOpt = False,
) -> None:
    """Draw the side-by-side video (input with 2D skeletons | 3D skeletons) from saved poses."""
    import dataclasses

    from .pipeline import DEFAULT_OUTPUT_DIR, place, render as render_fn
    from .results import load_npz

    output = output or DEFAULT_OUTPUT_DIR / f"{video.stem}_3d.mp4"
    result = run(load_npz, poses)
    if result.persons_3d and result.world is None:  # an npz of lifted poses not yet placed (older files)
        result = run(place, result, trajectory=True)
    rendered = run(render_fn, video, result, output, force=force, azimuth=azimuth, elevation=elevation,
                   quality=quality.value, progress=RichProgress())
    result = dataclasses.replace(result, warnings=[*result.warnings, *rendered.warnings],
                                 timings={**result.timings, "render": rendered.seconds})
    summary(result, [rendered.path], lifted=False)


@app.command(cls=Command)
def lifters() -> None:
    """List the lifters, their frame counts and the shipped weights with their measured accuracy."""
    from .lifters import default_weights, get_spec, list_lifters, load_checkpoint

    table = Table(show_header=True, header_style="bold")
    for col in ("lifter", "frames", "weights", "P1 mm", "P2 mm", "parameters"):
        table.add_column(col)
    for name in list_lifters():
        spec = get_spec(name)
        for frames in spec.frames:
            path = default_weights(name, frames)
            p1 = p2 = params = "-"
            shipped = "-"
            if path.is_file():
                lf = run(load_checkpoint, path)
                ev = lf.meta.get("training", {}).get("evaluation", {}).get("average", {})
                p1 = f"{ev['mpjpe']:.1f}" if "mpjpe" in ev else "?"
                p2 = f"{ev['p_mpjpe']:.1f}" if "p_mpjpe" in ev else "?"
                params = f"{lf.num_parameters / 1e6:.2f} M"
                shipped = path.name
            table.add_row(name, str(frames), shipped, p1, p2, params)
    out_console.print(table)


# the options of `train`, declared once here so that the command reads as the list of its settings
_T_DATA = Annotated[Path, typer.Option("--data", exists=True, dir_okay=False, help=(
    "Human3.6M 3D poses in VideoPose3D's format (data_3d_h36m.npz or the 17-joint file).")
)]
_T_FRAMES = Annotated[Optional[int], typer.Option("--frames", help=(
    "Window length, one of the lifter's presets (default: the lifter's default).")
)]
_T_OUT = Annotated[Optional[Path], typer.Option("--out", file_okay=False, help=(
    "Run folder (resumes from its last.pt); default runs/<lifter>_<frames>f.")
)]
_T_RECIPE = Annotated[Optional[str], typer.Option("--recipe", help=(
    "Named training settings of the lifter, the defaults for the options below: gastnet and stcformer "
    "'paper'; poseformer 'authors-code' (default) or 'paper'.")
)]
_T_EPOCHS = Annotated[Optional[int], typer.Option("--epochs", min=1, help="Epochs (default: the recipe's).")]
_T_BATCH_SIZE = Annotated[Optional[int], typer.Option("--batch-size", min=1, help=(
    "Samples per step, all processes together (default: the recipe's).")
)]
_T_LR = Annotated[Optional[float], typer.Option("--lr", help="Initial learning rate (default: the recipe's).")]
_T_LR_DECAY = Annotated[Optional[float], typer.Option("--lr-decay", help=(
    "Learning-rate factor after each epoch (default: the recipe's).")
)]
_T_WARMUP_STEPS = Annotated[int, typer.Option("--warmup-steps", min=0, help=(
    "Raise the learning rate linearly over this many first steps (for fine-tuning with --init).")
)]
_T_OPTIMIZER = Annotated[Optional[str], typer.Option("--optimizer", help="adam (amsgrad) or adamw.")]
_T_WEIGHT_DECAY = Annotated[Optional[float], typer.Option("--weight-decay", help="Weight decay.")]
_T_SUBSAMPLE = Annotated[int, typer.Option("--subsample", min=1, help=(
    "Use every n-th frame as a window centre (the phase rotates each epoch).")
)]
_T_SAMPLES_PER_EPOCH = Annotated[Optional[int], typer.Option("--samples-per-epoch", help="Cap an epoch.")]
_T_VAL_SUBJECTS = Annotated[Optional[list[str]], typer.Option("--val-subjects", help=(
    "Validate on this training subject instead of S9/S11 (repeatable), and train without it: best.pt is "
    "then chosen without looking at the test subjects.")
)]
_T_SEED = Annotated[int, typer.Option("--seed", help="Random seed (sample order and augmentation).")]
_T_FLIP = Annotated[bool, typer.Option("--flip/--no-flip", help="Horizontal flip augmentation.")]
_T_NOISE = Annotated[float, typer.Option("--noise", help=(
    "Max std of Gaussian 2D noise in normalised units (0.01 ~ 5 px on a 1000 px wide frame).")
)]
_T_JOINT_DROPOUT = Annotated[float, typer.Option("--joint-dropout", help=(
    "Probability per joint of a span replaced by interpolation, as for missing detections.")
)]
_T_COCO_SYNTHESIS = Annotated[float, typer.Option("--coco-synthesis", help=(
    "Probability per sample of pelvis, spine and thorax made as from COCO keypoints.")
)]
_T_VIRTUAL_CAMERAS = Annotated[float, typer.Option("--virtual-cameras", min=0.0, max=1.0, help=(
    "Probability per sample of the window filmed again through a random virtual camera (any azimuth, "
    "elevation -10 to 40 degrees, 2.5-20 m, 20-79 degrees across) and scaled to the typical size as lift does.")
)]
_T_DETECTOR_ERRORS = Annotated[Optional[Path], typer.Option("--detector-errors", exists=True, dir_okay=False, help=(
    "A bank of a detector's 2D errors recorded on rendered clips (scripts/detector_errors.py): windows get "
    "them, from the same view of the person, instead of COCO synthesis and noise.")
)]
_T_DETECTOR_ERRORS_P = Annotated[float, typer.Option("--detector-errors-p", min=0.0, max=1.0, help=(
    "Probability per sample of the detector's recorded errors (with --detector-errors).")
)]
_T_MAX_HOURS = Annotated[Optional[float], typer.Option("--max-hours", help=(
    "Stop cleanly after this many hours (resume later with the same command).")
)]
_T_PROBE_WINDOWS = Annotated[int, typer.Option("--probe-windows", min=0, help=(
    "Un-augmented training windows measured every epoch in eval mode and with the training noise on.")
)]
_T_PRECISION = Annotated[Precision, typer.Option("--precision", help=(
    "fp32; tf32 (CUDA only: TF32 matrix products); bf16 (autocast, output head and loss in float32).")
)]
_T_COMPILE = Annotated[bool, typer.Option("--compile/--no-compile", help="torch.compile the model for training.")]
_T_BUDGET = Annotated[Optional[str], typer.Option("--budget", help=(
    "A time budget for the whole run, e.g. 20m or 1.5h: the rate is measured over the first steps, then "
    "epochs, samples per epoch and the learning-rate decay (to a tenth) are set to end in time.")
)]
_T_INIT = Annotated[Optional[Path], typer.Option("--init", exists=True, dir_okay=False, help=(
    "Start from these weights (fine-tuning) instead of a random initialisation.")
)]
_T_MODEL_OPTION = Annotated[Optional[list[str]], typer.Option("--model-option", help=(
    "A field of the lifter's config as KEY=VALUE, repeatable, e.g. spatial_drop_path=0.1 "
    "(fine-tuning may change only dropout and stochastic depth).")
)]


@app.command(cls=Command)
def train(
    data: _T_DATA,
    lifter: LifterOpt = "gastnet",
    frames: _T_FRAMES = None,
    out: _T_OUT = None,
    recipe: _T_RECIPE = None,
    epochs: _T_EPOCHS = None,
    batch_size: _T_BATCH_SIZE = None,
    lr: _T_LR = None,
    lr_decay: _T_LR_DECAY = None,
    warmup_steps: _T_WARMUP_STEPS = 0,
    optimizer: _T_OPTIMIZER = None,
    weight_decay: _T_WEIGHT_DECAY = None,
    subsample: _T_SUBSAMPLE = 1,
    samples_per_epoch: _T_SAMPLES_PER_EPOCH = None,
    val_subjects: _T_VAL_SUBJECTS = None,
    seed: _T_SEED = 0,
    device: DeviceOpt = Device.auto,
    flip: _T_FLIP = True,
    noise: _T_NOISE = 0.0,
    joint_dropout: _T_JOINT_DROPOUT = 0.0,
    coco_synthesis: _T_COCO_SYNTHESIS = 0.0,
    virtual_cameras: _T_VIRTUAL_CAMERAS = 0.0,
    detector_errors: _T_DETECTOR_ERRORS = None,
    detector_errors_p: _T_DETECTOR_ERRORS_P = 0.5,
    max_hours: _T_MAX_HOURS = None,
    probe_windows: _T_PROBE_WINDOWS = 2048,
    precision: _T_PRECISION = Precision.fp32,
    compile_: _T_COMPILE = False,
    budget: _T_BUDGET = None,
    init: _T_INIT = None,
    model_option: _T_MODEL_OPTION = None,
) -> None:
    """Train a lifter on Human3.6M S1, S5, S6, S7, S8 (resumable; run under torchrun for several GPUs)."""
    cfg = run(train_config, **locals())
    from .training import train as train_fn
    summary_ = run(train_fn, cfg, log=lambda m: err_console.print(m, highlight=False, markup=False),
                   progress=TrainProgress())
    if summary_["rank"] == 0:
        out_console.print(f"{cfg.out}/final.pt (epochs completed: {summary_['epochs_completed']}, best validation "
                          f"MPJPE {summary_['best_val_mpjpe_mm']:.1f} mm)")


def train_config(data: Path, lifter: str, out: Optional[Path], budget: Optional[str], init: Optional[Path],
                 model_option: Optional[list[str]], compile_: bool, val_subjects: Optional[list[str]],
                 **settings):
    """`train`'s options as a TrainConfig: the options named as its fields pass through (Enums as their values,
    paths as strings, None meaning the recipe's); the others are translated here."""
    from .lifters import get_spec
    from .training import TrainConfig, parse_duration

    settings = {k: (v.value if isinstance(v, Enum) else str(v) if isinstance(v, Path) else v)
                for k, v in settings.items()}
    settings["frames"] = settings.get("frames") or get_spec(lifter).default_frames
    return TrainConfig.for_lifter(
        str(data), lifter, out=str(out or Path("runs") / f"{lifter}_{settings['frames']}f"),
        budget_minutes=parse_duration(budget) if budget else None, init_from=str(init) if init else None,
        model_overrides=parse_model_options(model_option or []), compile=compile_,
        val_subjects=tuple(val_subjects) if val_subjects else None, **settings)


def parse_model_options(items: list[str]) -> dict:
    """``["drop_path=0.1", "spatial_drop_path_per=window"]`` -> {"drop_path": 0.1, ...}: numbers, true/false,
    else the text."""
    options = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            from .training import TrainConfigError
            raise TrainConfigError(f"--model-option takes KEY=VALUE, not {item!r}")
        value: object = text
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            for kind in (int, float):
                try:
                    value = kind(text)
                    break
                except ValueError:
                    pass
        options[key.strip()] = value
    return options


class TrainProgress:
    """A rich bar on a terminal; on anything else (a log file, CI) a plain line every `every_s` seconds and at
    the end of each epoch, since a bar that redraws in place writes nothing readable to a file."""

    def __init__(self, console: Console = err_console, every_s: float = 60.0):
        self.console = console
        self.plain = not console.is_terminal
        self.every_s = every_s
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("loss {task.fields[loss]:.1f} mm"), TextColumn("{task.fields[rate]:.0f} samples/s"),
                            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console)
        self.task = None
        self.label = ""
        self.total = 0
        self.last_line = 0.0

    def start_epoch(self, epoch: int, epochs: int, steps: int, step: int) -> None:
        self.label, self.total, self.last_line = f"epoch {epoch + 1}/{epochs}", steps, time.monotonic()
        if self.plain:
            return
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.bar.start()
        self.task = self.bar.add_task(self.label, total=steps, completed=step, loss=0.0, rate=0.0)

    def update(self, step: int, loss_mm: float, rate: float) -> None:
        check_signals()
        if self.plain:
            now = time.monotonic()
            if now - self.last_line >= self.every_s or step == self.total:
                self.last_line = now
                self.console.print(f"{self.label} step {step}/{self.total} loss {loss_mm:.1f} mm {rate:.0f} samples/s",
                                   highlight=False, markup=False)
            return
        self.bar.update(self.task, completed=step, loss=loss_mm, rate=rate)
        if step == self.bar.tasks[-1].total:
            self.bar.stop()


@app.command(cls=Command)
def evaluate(
    data: Annotated[Path, typer.Option("--data", exists=True, dir_okay=False, help=(
        "3D poses in VideoPose3D's format: Human3.6M's, or HumanEva-I's with --dataset humaneva.")
    )],
    dataset: Annotated[Dataset, typer.Option("--dataset", help=(
        "h36m: the Human3.6M protocol; humaneva: HumanEva-I's Walking/Jog/Box (Validate/S1-S3, GT 2D of the three "
        "colour cameras), P-MPJPE on the 14 joints it shares with Human3.6M: a cross-dataset check.")
    )] = Dataset.h36m,
    lifter: LifterOpt = "gastnet",
    weights: WeightsOpt = None,
    subjects: Annotated[str, typer.Option("--subjects", help="Comma-separated test subjects.")] = "S9,S11",
    actions: Annotated[Optional[str], typer.Option("--actions", help="Comma-separated action prefixes (default all).")] = None,
    cameras: Annotated[Optional[str], typer.Option("--cameras", help="Comma-separated camera ids or indices 0-3.")] = None,
    data_2d: Annotated[Optional[Path], typer.Option("--data-2d", exists=True, dir_okay=False, help=(
        "VideoPose3D 2D file (positions_2d, e.g. CPN detections) instead of GT 2D.")
    )] = None,
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="Flip test-time augmentation.")] = True,
    device: DeviceOpt = Device.auto,
    json_out: Annotated[Optional[Path], typer.Option("--json", dir_okay=False, help="Also write the table as JSON.")] = None,
    noise_px: Annotated[float, typer.Option("--noise-px", min=0, help=(
        "Robustness: Gaussian noise on the 2D, std in pixels (not the protocol).")
    )] = 0.0,
    drift_px: Annotated[float, typer.Option("--drift-px", min=0, help=(
        "Robustness: slowly drifting 2D offsets, std in pixels (not the protocol).")
    )] = 0.0,
    coco_synthesis: Annotated[bool, typer.Option("--coco-synthesis", help=(
        "Robustness: pelvis, spine and thorax made from COCO-like joints, as for YOLO input (not the protocol).")
    )] = False,
    max_frames: Annotated[Optional[int], typer.Option("--max-frames", min=1, help=(
        "Only each take's first N frames (quick checks; not the protocol).")
    )] = None,
    windows: WindowsOpt = Windows.blend,
    force: ForceOpt = False,
) -> None:
    """Human3.6M protocol: P1 MPJPE, P2 P-MPJPE, N-MPJPE and MPJVE per action and their mean (or HumanEva-I's)."""
    from .evaluation import Perturbation, evaluate as evaluate_fn
    from .io import AtomicPath, check_output
    from .lifters import create_lifter

    if json_out is not None:
        run(check_output, json_out, force)
    model = run(create_lifter, lifter, weights=weights, device=device.value)
    if dataset is Dataset.humaneva:
        if noise_px or drift_px or coco_synthesis or max_frames or cameras or actions:
            fail("--dataset humaneva takes no perturbation, --max-frames, --cameras or --actions", 2)
        _evaluate_humaneva(model, data, data_2d, None if subjects == "S9,S11" else subjects, flip, windows, json_out, force)
        return
    start = time.perf_counter()
    report = run(evaluate_fn, model, data, subjects=[s.strip() for s in subjects.split(",") if s.strip()],
                 actions=actions.split(",") if actions else None, cameras=cameras.split(",") if cameras else None,
                 flip=flip, data_2d=data_2d, perturb=Perturbation(noise_px, coco_synthesis, drift_px),
                 max_frames=max_frames, windows=windows.value, progress=RichProgress())
    condition = "GT 2D" if report.perturbation is None else f"perturbed 2D {report.perturbation}"
    table = Table(title=f"{model.name} ({report.weights}), {', '.join(report.subjects)}, {condition}, "
                        f"{'flip TTA' if flip else 'no TTA'}"
                        + (f", first {max_frames} frames per take" if max_frames else "")
                        + (f", {report.windows} windows" + (f" every {report.hop}" if report.hop else "")
                           if model.spec.windowing.seq2seq else ""), header_style="bold")
    for col in ("action", "frames", "P1 MPJPE", "P2 P-MPJPE", "N-MPJPE", "MPJVE"):
        table.add_column(col, justify="right" if col != "action" else "left")
    for name, a in sorted(report.actions.items()):
        table.add_row(name, str(a.frames), f"{a.mpjpe:.1f}", f"{a.p_mpjpe:.1f}", f"{a.n_mpjpe:.1f}", f"{a.mpjve:.2f}")
    avg = report.average
    table.add_row("Average", str(report.frames), f"{avg['mpjpe']:.1f}", f"{avg['p_mpjpe']:.1f}", f"{avg['n_mpjpe']:.1f}",
                  f"{avg['mpjve']:.2f}", style="bold")
    out_console.print(table)
    out_console.print(f"mm; MPJVE in mm/frame at 50 fps; {time.perf_counter() - start:.0f} s", highlight=False)
    if json_out is not None:
        with AtomicPath(json_out, force=force) as a:
            a.tmp.write_text(json.dumps(report.to_dict(), indent=2))
        out_console.print(str(json_out), highlight=False)


def _evaluate_humaneva(model, data: Path, data_2d: Path | None, subjects: str | None, flip: bool, windows: Windows,
                       json_out: Path | None, force: bool) -> None:
    """``evaluate --dataset humaneva``: the table of P-MPJPE per action and subject."""
    from .evaluation import evaluate_humaneva
    from .io import AtomicPath

    if data_2d is None:  # VideoPose3D's names: the 2D file lies beside the 3D one
        data_2d = data.with_name("data_2d_humaneva15_gt.npz")
        if not data_2d.is_file():
            fail(f"no --data-2d given and no {data_2d.name} beside {data}", 2)
    start = time.perf_counter()
    report = run(evaluate_humaneva, model, data, data_2d,
                 subjects=[s.strip() for s in subjects.split(",") if s.strip()] if subjects else None,
                 flip=flip, windows=windows.value, progress=RichProgress())
    table = Table(title=f"{model.name} ({report.weights}), HumanEva-I, GT 2D, P-MPJPE on 14 shared joints, "
                        f"{'flip TTA' if flip else 'no TTA'}", header_style="bold")
    for col in ("action", "frames", *report.subjects, "all"):
        table.add_column(col, justify="right" if col != "action" else "left")
    for name, (n, err) in sorted(report.actions.items()):
        cells = [f"{report.per_subject[f'{name} {s}']:.1f}" if f"{name} {s}" in report.per_subject else "-"
                 for s in report.subjects]
        table.add_row(name, str(n), *cells, f"{err:.1f}")
    table.add_row("Average", str(report.frames), *[""] * len(report.subjects), f"{report.average:.1f}", style="bold")
    out_console.print(table)
    out_console.print(f"mm; the 2D scaled to the lifter's typical input size as lift does; "
                      f"{time.perf_counter() - start:.0f} s", highlight=False)
    if json_out is not None:
        with AtomicPath(json_out, force=force) as a:
            a.tmp.write_text(json.dumps(report.to_dict(), indent=2))
        out_console.print(str(json_out), highlight=False)


data_app = typer.Typer(cls=OneLineErrors, no_args_is_help=True, add_completion=False,
                       help="Training data: a compact copy of Human3.6M's 3D poses to move to a training machine.")
app.add_typer(data_app, name="data")


@data_app.command("pack", cls=Command)
def data_pack(
    src: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=(
        "VideoPose3D's data_3d_h36m.npz (32 or 17 joints).")
    )],
    dst: Annotated[Path, typer.Argument(dir_okay=False, help="The packed file to write (e.g. h36m_17j.xz).")],
    force: ForceOpt = False,
) -> None:
    """Pack the 3D poses: 0.1 mm integers, differences along time, xz (about 20 MB for 91 MB). `video3d train
    --data` and `evaluate --data` read the packed file as it is."""
    from .data.pack import pack

    info = run(pack, src, dst, force=force)
    err_console.print(f"{info['takes']} takes, {info['frames']:,} frames: {info['bytes_in'] / 1e6:.1f} MB -> "
                      f"{info['bytes_out'] / 1e6:.1f} MB, largest error {info['max_error_m'] * 1000:.3f} mm",
                      highlight=False)
    out_console.print(str(dst), highlight=False)


@data_app.command("unpack", cls=Command)
def data_unpack(
    src: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A file written by `video3d data pack`.")],
    dst: Annotated[Path, typer.Argument(dir_okay=False, help="VideoPose3D-format npz to write.")],
    force: ForceOpt = False,
) -> None:
    """Write a packed file back in VideoPose3D's format (positions_3d), for other tools."""
    from .data.pack import unpack

    run(unpack, src, dst, force=force)
    out_console.print(str(dst), highlight=False)


@app.command(cls=Command)
def version() -> None:
    """Print the version."""
    out_console.print(f"video3d {__version__}", highlight=False)


def main() -> None:
    handle_signals()
    app()


if __name__ == "__main__":
    main()
