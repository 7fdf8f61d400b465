"""``video3d batch``: ``reconstruct`` over many videos, resumable, on one machine or a Ray cluster.

- Inputs are files, folders (searched recursively for videos) and glob patterns. Each video's outputs go to
  ``output_dir``, under the video's folder relative to the folder or pattern it was found by, named as
  ``reconstruct`` names them; files already inside ``output_dir`` are never taken as inputs.
- Workers load the detector and the lifter once and keep them for every video they are given. On one machine
  they are processes (``jobs`` of them, each pinned to its own ``threads`` cores, so jobs x threads never
  exceeds the cores); on a cluster, Ray actors (``backend="ray"``) running the very same ``VideoWorker``.
- ``output_dir/manifest.jsonl`` records each video: a line when it starts and one when it ends (input, size,
  mtime, options, outputs, status, the one-line error, seconds, frames/s), appended by the driver alone.
  A rerun skips what is done and unchanged (same size, mtime and options, outputs present) and what failed
  (unless ``retry_failed``); a video that was interrupted is redone, overwriting only its own outputs.
- A failed video is recorded with its error and the batch goes on.
"""

from __future__ import annotations

import glob
import dataclasses
import hashlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol

from .errors import InputError, OutputError, Video3DError
from .options import ReconstructOptions
from .signals import handle_signals

VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".mts",
                  ".m2ts", ".3gp", ".ogv"}
MANIFEST = "manifest.jsonl"
FAILED_EXIT_CODE = 5  # the batch ran to its end, and some videos failed (see the manifest)
BACKENDS = ("process", "ray")


@dataclass(frozen=True)
class Job:
    input: Path  # absolute
    output_dir: Path  # where reconstruct writes this video's files

    @property
    def name(self) -> str:
        return self.input.name


@dataclass
class Outcome:
    job: Job
    status: str  # done, failed, skipped (done before), skipped-failed (failed before)
    error: str = ""
    outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    frames: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class BatchReport:
    outcomes: list[Outcome]
    seconds: float
    jobs: int
    backend: str

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in ("failed", "skipped-failed")]

    @property
    def videos_per_minute(self) -> float:
        done = self.count("done")
        return 60.0 * done / self.seconds if self.seconds > 0 else 0.0


class BatchProgress(Protocol):
    def start(self, videos: int, frames: int | None) -> None: ...
    def video_started(self, job: Job) -> None: ...
    def video_finished(self, outcome: Outcome, frames: int) -> None: ...
    def stop(self) -> None: ...


# --- inputs --------------------------------------------------------------------------------------------------
def expand_inputs(inputs: Iterable[str | os.PathLike], output_dir: str | os.PathLike) -> list[Job]:
    """Files, folders and glob patterns -> one Job per video, in a stable order. A folder's videos (by suffix,
    recursively) and a pattern's matches keep their sub-folders under ``output_dir``; a named file's outputs go
    to ``output_dir`` itself. Two videos whose outputs would collide are an InputError."""
    out = Path(output_dir).resolve()
    jobs: dict[Path, Job] = {}
    for item in inputs:
        text = str(item)
        path = Path(text).expanduser()
        if path.is_file():
            found = [(path.resolve(), Path("."))]
        elif path.is_dir():
            base = path.resolve()
            found = [(f.resolve(), f.resolve().parent.relative_to(base)) for f in sorted(base.rglob("*"))
                     if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES]
        elif glob.has_magic(text):
            base = Path(_glob_base(text)).resolve()
            found = []
            for match in sorted(glob.glob(os.path.expanduser(text), recursive=True)):
                f = Path(match).resolve()
                if f.is_file():
                    found.append((f, f.parent.relative_to(base) if f.parent.is_relative_to(base) else Path(".")))
        else:
            raise InputError(f"no such file or folder: {text}")
        found = [(f, rel) for f, rel in found if not f.is_relative_to(out)]  # never our own outputs
        if not found:
            raise InputError(f"{text} holds no video ({', '.join(sorted(VIDEO_SUFFIXES))})" if path.is_dir()
                             else f"{text} matches no file")
        for f, rel in found:
            jobs.setdefault(f, Job(f, out / rel))
    seen: dict[tuple[Path, str], Path] = {}
    for job in jobs.values():
        key = (job.output_dir, job.input.stem)
        if key in seen:
            raise InputError(f"{seen[key]} and {job.input} would write the same outputs in {job.output_dir}; "
                             f"run them in separate batches or give their folder instead")
        seen[key] = job.input
    return list(jobs.values())


def _glob_base(pattern: str) -> str:
    """The folder part of a pattern before its first wildcard."""
    parts = Path(os.path.expanduser(pattern)).parts
    keep = []
    for part in parts:
        if glob.has_magic(part):
            break
        keep.append(part)
    return str(Path(*keep)) if keep else "."


# --- the manifest ----------------------------------------------------------------------------------------------
class Manifest:
    """``manifest.jsonl``: one JSON record per line, appended (never rewritten); the last record of an input wins.
    A line cut short by a crash is ignored when read."""

    def __init__(self, path: Path):
        self.path = path
        self.latest: dict[str, dict] = {}
        if path.is_file():
            for line in path.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and isinstance(record.get("input"), str):
                    self.latest[record["input"]] = record

    def append(self, record: dict) -> None:
        line = (json.dumps(record) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        try:
            os.write(fd, line)  # one write of one line: O_APPEND puts it whole at the end
            os.fsync(fd)
        finally:
            os.close(fd)
        self.latest[record["input"]] = record


def fingerprint(options: ReconstructOptions) -> str:
    """What makes two runs of a video give the same outputs: every reconstruct option, as text."""
    text = json.dumps(dict(sorted(options.describe().items())))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def plan(jobs: list[Job], manifest: Manifest, options: ReconstructOptions, retry_failed: bool = False
         ) -> tuple[list[tuple[Job, bool]], list[Outcome]]:
    """(jobs to run, each with whether it may overwrite its outputs), and the outcomes of those skipped."""
    fp = fingerprint(options)
    todo, skipped = [], []
    for job in jobs:
        record = manifest.latest.get(str(job.input))
        size, mtime = _stat(job.input)
        same = record is not None and record.get("size") == size and record.get("mtime_ns") == mtime \
            and record.get("options") == fp
        if same and record.get("status") == "done" and all(Path(p).is_file() for p in record.get("outputs", [])):
            skipped.append(Outcome(job, "skipped", outputs=record.get("outputs", [])))
        elif same and record.get("status") == "failed" and not retry_failed:
            skipped.append(Outcome(job, "skipped-failed", error=record.get("error", "")))
        else:
            todo.append((job, record is not None))  # a video we ran before: its outputs are ours to replace
    return todo, skipped


# --- the worker --------------------------------------------------------------------------------------------------
class VideoWorker:
    """Loads the lifter and the detector once, then reconstructs one video per ``process`` call. The same class
    runs in a local worker process and as a Ray actor."""

    def __init__(self, options: ReconstructOptions, threads: int | None = None):
        import torch

        from .lifters import create_lifter

        if threads:
            torch.set_num_threads(threads)
        self.options = dataclasses.replace(
            options, lifter=create_lifter(options.lifter, weights=options.weights, device=options.device))
        self.detector = None  # loaded with the first video (it needs no frame rate to load, only to track)

    def process(self, input: str, output_dir: str, force: bool) -> dict:
        """One video; never raises for a bad video: the result's status says done or failed (with the error)."""
        from .detector import PoseDetector
        from .pipeline import reconstruct

        start = time.perf_counter()
        try:
            if self.detector is None:
                o = self.options
                self.detector = PoseDetector(o.detector, device=o.device, conf=o.conf, imgsz=o.imgsz, tile=o.tile)
            out = reconstruct(input, output_dir, dataclasses.replace(self.options, detector=self.detector), force=force)
            outputs = [str(p) for p in (out.npz, *out.exports, out.video) if p is not None]
            return {"input": input, "status": "done", "outputs": outputs, "seconds": time.perf_counter() - start,
                    "frames": out.result.num_frames, "warnings": out.result.warnings}
        except Video3DError as exc:
            return {"input": input, "status": "failed", "error": str(exc), "seconds": time.perf_counter() - start}
        except Exception as exc:  # a bug, but one video's bug must not stop the batch
            return {"input": input, "status": "failed", "error": f"internal error: {type(exc).__name__}: {exc}",
                    "seconds": time.perf_counter() - start}

    def close(self) -> None:
        """Remove this worker's temporary folders (a Ray actor is killed, and exit handlers do not run)."""
        from .detector import remove_settings_dir

        if self.detector is not None:
            self.detector.close()
        remove_settings_dir()


_WORKER: VideoWorker | None = None


def _init_process(options: ReconstructOptions, threads: int, cores) -> None:
    """A local worker: its own cores (so OpenVINO, torch and ffmpeg stay on them), Ctrl-C left to the driver,
    SIGTERM unwinding so temporary files go, the models loaded once."""
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    handle_signals()
    if cores is not None and hasattr(os, "sched_setaffinity"):
        mine = cores.get()
        os.sched_setaffinity(0, mine)
    _WORKER = VideoWorker(options, threads)


def _process(args: tuple[str, str, bool]) -> dict:
    return _WORKER.process(*args)


# --- running --------------------------------------------------------------------------------------------------
def cores_available() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def default_jobs(cores: int, threads: int = 2) -> int:
    """One worker per ``threads`` cores (two by default, each worker with two threads). On this
    project's 2-core machine one worker of 2 threads and two of 1 thread ran 8 clips in 16.5 and 15.7 s
    (benchmarks/batch.py, one run): the same within noise, and one worker holds the models once."""
    return max(1, cores // threads)


def run(inputs: Iterable[str | os.PathLike], output_dir: str | os.PathLike, options: ReconstructOptions | None = None,
        jobs: int | None = None, backend: str = "process", threads: int | None = None, retry_failed: bool = False,
        force: bool = False, ray_address: str | None = None, num_gpus: float = 0.0,
        progress: BatchProgress | None = None, **settings) -> BatchReport:
    """Reconstruct every video of ``inputs`` into ``output_dir`` (see the module's docstring) with ``options`` (a
    ``ReconstructOptions``), and any of its fields as keywords on top (lifter, weights, detector, persons, device,
    write_video, smooth, ...). The lifter and the detector are named, not loaded: each worker loads its own.
    ``jobs`` workers of ``threads`` threads (defaults: ``default_jobs``; for Ray, the cluster's CPUs). ``force``
    lets the batch overwrite outputs it did not write itself."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    options = ReconstructOptions.of(options, **settings)
    if not isinstance(options.lifter, str) or not isinstance(options.detector, (str, type(None))):
        raise TypeError("batch workers load their own models: name the lifter and the detector, do not pass them loaded")
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(f"{output_dir} is a file, not a folder")
    all_jobs = expand_inputs(inputs, output_dir)
    manifest = Manifest(output_dir / MANIFEST)
    todo, outcomes = plan(all_jobs, manifest, options, retry_failed)
    todo = [(job, ours or force) for job, ours in todo]  # may it overwrite existing outputs?
    by_input = {str(job.input): job for job, _ in todo}
    start = time.perf_counter()
    frames = _frame_counts([j for j, _ in todo])
    if progress is not None:
        progress.start(len(all_jobs), sum(n for n in frames.values() if n) or None)
        for o in outcomes:
            progress.video_finished(o, 0)
    if backend == "ray":
        runner, jobs = _ray_runner(options, jobs, threads, ray_address, num_gpus)
    else:
        cores = cores_available()
        threads = threads or (max(1, len(cores) // jobs) if jobs else 2)
        jobs = jobs or default_jobs(len(cores), threads)
        runner = _process_runner(options, min(jobs, max(1, len(todo))), threads, cores)
    fp = fingerprint(options)
    try:
        for result in runner(todo, manifest, fp, progress):
            job = by_input[result["input"]]
            outcome = Outcome(job, result["status"], result.get("error", ""), result.get("outputs", []),
                              result.get("seconds", 0.0), result.get("frames", 0))
            outcomes.append(outcome)
            started = manifest.latest[result["input"]]  # the input as it was when its run started
            manifest.append({"input": str(job.input), "size": started["size"], "mtime_ns": started["mtime_ns"],
                             "options": fp,
                             "status": outcome.status, "error": outcome.error, "outputs": outcome.outputs,
                             "seconds": round(outcome.seconds, 3), "frames": outcome.frames,
                             "fps": round(outcome.fps, 2), "warnings": result.get("warnings", []),
                             "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
            if progress is not None:
                progress.video_finished(outcome, frames.get(job.input) or outcome.frames)
    finally:
        if progress is not None:
            progress.stop()
    order = {j.input: i for i, j in enumerate(all_jobs)}
    outcomes.sort(key=lambda o: order[o.job.input])
    return BatchReport(outcomes, time.perf_counter() - start, jobs, backend)


def _frame_counts(jobs: list[Job]) -> dict[Path, int | None]:
    from .video import probe

    counts = {}
    for job in jobs:
        try:
            counts[job.input] = probe(job.input).frame_count
        except Video3DError:
            counts[job.input] = None
    return counts


def _started(manifest: Manifest, job: Job, allow_overwrite: bool, fp: str, progress) -> tuple[str, str, bool]:
    """Record that a video starts (so an interrupted one is known as ours to redo) and give a worker's arguments."""
    size, mtime = _stat(job.input)
    manifest.append({"input": str(job.input), "size": size, "mtime_ns": mtime, "options": fp, "status": "started",
                     "outputs": [], "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    if progress is not None:
        progress.video_started(job)
    return str(job.input), str(job.output_dir), allow_overwrite


def _process_runner(options: ReconstructOptions, jobs: int, threads: int, cores: list[int]):
    """Local worker processes ('spawn': a fresh interpreter, no forked OpenMP state), each pinned to its own
    ``threads`` cores when there are enough, ``jobs`` videos in flight. A worker that dies (a crash in a native
    library) breaks the pool: the videos that finish with that error are recorded as failed, those still in
    flight are queued again, and a new pool runs the rest."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")

    def new_pool() -> ProcessPoolExecutor:
        queue = None
        if threads * jobs <= len(cores):
            queue = ctx.Queue()
            for i in range(jobs):
                queue.put(set(cores[i * threads:(i + 1) * threads]))
        return ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_process, initargs=(options, threads, queue))

    def runner(todo, manifest, fp, progress):
        if not todo:
            return
        pending = list(reversed(todo))
        pool = new_pool()
        inflight = {}
        try:
            while pending or inflight:
                while pending and len(inflight) < jobs:
                    job, allow = pending.pop()
                    args = _started(manifest, job, allow, fp, progress)
                    inflight[pool.submit(_process, args)] = args[0]
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for future in done:
                    key = inflight.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        yield {"input": key, "status": "failed", "error": "the worker process died while "
                                    "reconstructing this video (a crash in a native library?)"}
                if any(isinstance(f.exception(), BrokenProcessPool) for f in done if f.done()):
                    for future, key in inflight.items():  # lost with the pool: run them again
                        pending.append(next((j, a) for j, a in todo if str(j.input) == key))
                    inflight.clear()
                    pool.shutdown(wait=True)
                    pool = new_pool()
        except BaseException:
            _stop_workers(pool)  # SIGTERM: each worker unwinds and removes its temporary files
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    return runner


def _stop_workers(pool) -> None:
    """Send SIGTERM to a ProcessPoolExecutor's workers (it has no public way to stop running tasks)."""
    for process in list(getattr(pool, "_processes", {}).values()):
        if process.is_alive():
            process.terminate()


def _ray_runner(options: ReconstructOptions, jobs: int | None, threads: int | None, address: str | None, num_gpus: float):
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise InputError("--ray needs Ray: pip install 'video3d[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    threads = threads or 1
    cpus = int(ray.cluster_resources().get("CPU", 1))
    jobs = jobs or max(1, cpus // threads)
    Actor = ray.remote(num_cpus=threads, num_gpus=num_gpus)(VideoWorker)

    def runner(todo, manifest, fp, progress):
        if not todo:
            return
        actors = [Actor.remote(options, threads) for _ in range(min(jobs, len(todo)))]
        pool = ActorPool(actors)
        try:
            def submit(actor, item):
                job, allow = item
                return actor.process.remote(*_started(manifest, job, allow, fp, progress))

            yield from pool.map_unordered(submit, todo)
        finally:
            try:
                ray.get([actor.close.remote() for actor in actors])  # each removes its detector's temporary folder
            except ray.exceptions.RayError:  # an actor that died cannot clean up; nothing more to do for it
                pass
            for actor in actors:
                ray.kill(actor)

    return runner, jobs
