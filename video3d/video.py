"""Video in and out by streaming through ffmpeg (ffmpeg-python builds the commands; the ffmpeg
binary is imageio-ffmpeg's, installed by pip, unless $VIDEO3D_FFMPEG or $IMAGEIO_FFMPEG_EXE names another).

- ``probe``: fps, frame count, size and rotation from the container (ffmpeg's own header report:
  imageio-ffmpeg ships ffmpeg without ffprobe);
- ``read_frames``: one BGR frame at a time, already rotated for display, every frame exactly
  once (no frame rate conversion), so frame i of the output is frame i of the input;
- ``VideoWriter``: H.264 at the input's exact frame rate, with the input's audio track, written
  to a temporary file and renamed on success.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import InputError, Video3DError
from .io import AtomicPath


def ffmpeg_exe() -> str:
    exe = os.environ.get("VIDEO3D_FFMPEG")
    if exe:
        return exe
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - a dependency
        raise Video3DError("imageio-ffmpeg is not installed; `pip install imageio-ffmpeg`") from exc
    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int  # as displayed (after rotation)
    height: int
    fps: float
    fps_fraction: str  # exact rate for the encoder, e.g. "30000/1001"
    frame_count: int | None  # from the container (duration x fps) where known; the decode count is exact
    rotation: int  # degrees the player rotates the stored frames by (0, 90, 180, 270)
    has_audio: bool
    codec: str
    duration: float | None

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.width, self.height


_VIDEO_RE = re.compile(r"Stream #\d+:\d+.*?: Video: (?P<codec>[^\s,]+).*?, (?P<w>\d{2,5})x(?P<h>\d{2,5})")
_FPS_RE = re.compile(r"(?P<fps>[\d.]+)(?P<k>k?) fps")
_TBR_RE = re.compile(r"(?P<fps>[\d.]+)(?P<k>k?) tbr")
_DURATION_RE = re.compile(r"Duration: (?P<h>\d+):(?P<m>\d+):(?P<s>[\d.]+)")
_ROTATION_RE = re.compile(r"(?:rotation of|rotate\s*:)\s*(?P<deg>-?[\d.]+)")
_AUDIO_RE = re.compile(r"Stream #\d+:\d+.*?: Audio: ")
_FRAMES_META_RE = re.compile(r"NUMBER_OF_FRAMES\S*\s*:\s*(?P<n>\d+)")


def parse_ffmpeg_header(text: str, path: Path) -> VideoInfo:
    """Parse what `ffmpeg -i FILE` prints about its input (tested on real reports in tests/)."""
    lines = text.splitlines()
    video_line = next((ln for ln in lines if _VIDEO_RE.search(ln)), None)
    if video_line is None:
        raise InputError(f"{path} has no video stream (not a video file?)")
    m = _VIDEO_RE.search(video_line)
    codec, w, h = m["codec"], int(m["w"]), int(m["h"])
    fps_m = _FPS_RE.search(video_line) or _TBR_RE.search(video_line)
    if fps_m is None:
        raise InputError(f"{path}: the container gives no frame rate")
    fps = float(fps_m["fps"]) * (1000 if fps_m["k"] else 1)
    if not fps > 0:
        raise InputError(f"{path}: invalid frame rate {fps}")
    fps_fraction = _exact_rate(fps)
    # rotation from display-matrix side data or a rotate tag following the video stream
    start = lines.index(video_line)
    rotation = 0
    for ln in lines[start + 1:]:
        if ln.lstrip().startswith("Stream #") and ln is not video_line:
            break
        r = _ROTATION_RE.search(ln)
        if r:
            # ffmpeg reports the display matrix as "rotation of -90.00 degrees" (counter-clockwise)
            deg = float(r["deg"])
            rotation = int(round(-deg if "rotation of" in ln else deg)) % 360
            break
    if rotation in (90, 270):
        w, h = h, w
    d = _DURATION_RE.search(text)
    duration = int(d["h"]) * 3600 + int(d["m"]) * 60 + float(d["s"]) if d else None
    frames_meta = _FRAMES_META_RE.search(text)
    if frames_meta:
        frame_count = int(frames_meta["n"])
    elif duration is not None:
        frame_count = int(round(duration * fps))
    else:
        frame_count = None
    return VideoInfo(path=path, width=w, height=h, fps=fps, fps_fraction=fps_fraction, frame_count=frame_count,
                     rotation=rotation, has_audio=bool(_AUDIO_RE.search(text)), codec=codec, duration=duration)


def _exact_rate(fps: float) -> str:
    """29.97 -> 30000/1001 (the NTSC rates ffmpeg prints rounded); other rates as the nearest fraction."""
    for base in (24, 30, 60, 120, 240):
        ntsc = base * 1000 / 1001
        if abs(fps - ntsc) < 0.006:
            return f"{base * 1000}/1001"
    frac = Fraction(fps).limit_denominator(1001)
    return f"{frac.numerator}/{frac.denominator}"


def probe(path: str | Path) -> VideoInfo:
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty")
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                          capture_output=True, text=True, errors="replace")
    text = proc.stderr
    if "Invalid data found" in text or "could not find codec parameters" in text.lower() \
            or ("Input #0" not in text):
        raise InputError(f"{path} is not a readable video (ffmpeg: {_last_error_line(text)})")
    return parse_ffmpeg_header(text, path)


def _last_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "must be specified" not in ln]
    return lines[-1] if lines else "no output"


def read_frames(info: VideoInfo) -> Iterator[np.ndarray]:
    """Yield (H, W, 3) uint8 BGR frames, one per frame of the input; never more than one in memory."""
    import ffmpeg  # ffmpeg-python

    cmd = (
        ffmpeg.input(str(info.path))
        .output("pipe:", format="rawvideo", pix_fmt="bgr24", fps_mode="passthrough")
        .global_args("-nostdin", "-loglevel", "error")
        .compile(cmd=ffmpeg_exe())
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    frame_bytes = info.width * info.height * 3
    count = 0
    try:
        while True:
            buf = _read_exact(proc.stdout, frame_bytes)
            if buf is None:
                break
            count += 1
            yield np.frombuffer(buf, np.uint8).reshape(info.height, info.width, 3)
    finally:
        proc.stdout.close()
        if proc.poll() is None:
            proc.kill()
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        code = proc.wait()
    if code != 0 and count == 0:
        raise InputError(f"{info.path}: ffmpeg could not decode any frame ({_last_error_line(err)})")
    if count == 0:
        raise InputError(f"{info.path} has no frames")


def _read_exact(stream, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            if got:
                raise InputError(f"the video ended in the middle of a frame ({got} of {n} bytes)")
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


class VideoWriter:
    """Encode BGR frames to H.264 (yuv420p, even size) at the source's exact frame rate, with the source's
    audio. Use as a context manager: the file appears at ``path`` only when the block succeeds."""

    def __init__(self, path: str | Path, width: int, height: int, fps_fraction: str,
                 audio_from: VideoInfo | None = None, duration: float | None = None, crf: int = 20,
                 preset: str = "veryfast", force: bool = False):
        import ffmpeg

        self.width, self.height = width, height
        self.atomic = AtomicPath(path, force=force)
        self.frames = 0
        video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="bgr24", s=f"{width}x{height}", framerate=fps_fraction)
        streams = [video]
        if audio_from is not None and audio_from.has_audio:
            # the audio is cut to the video's duration rather than the video to the audio's ('-shortest'
            # would drop the last frame when the audio track is a little shorter)
            trim = {"t": f"{duration:.6f}"} if duration else {}
            streams.append(ffmpeg.input(str(audio_from.path), **trim).audio)
        pad = "pad=ceil(iw/2)*2:ceil(ih/2)*2"
        out = ffmpeg.output(
            *streams, str(self.atomic.tmp), vcodec="libx264", pix_fmt="yuv420p", crf=crf, preset=preset,
            vf=pad, movflags="+faststart", format="mp4",
            **({"acodec": "aac"} if len(streams) > 1 else {}),
        ).global_args("-nostdin", "-loglevel", "error", "-y")
        self._cmd = out.compile(cmd=ffmpeg_exe())
        self._proc = None

    def __enter__(self) -> "VideoWriter":
        self.atomic.__enter__()
        self._proc = subprocess.Popen(self._cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        return self

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"expected a ({self.height}, {self.width}, 3) uint8 frame, got {frame.shape} {frame.dtype}")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BrokenPipeError:
            err = self._proc.stderr.read().decode(errors="replace")
            raise Video3DError(f"ffmpeg stopped encoding: {_last_error_line(err)}") from None
        self.frames += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        proc = self._proc
        if proc is not None:
            if exc_type is None:
                proc.stdin.close()
                err = proc.stderr.read().decode(errors="replace")
                if proc.wait() != 0:
                    self.atomic.__exit__(Video3DError, None, None)
                    raise Video3DError(f"ffmpeg failed to encode {self.atomic.path}: {_last_error_line(err)}")
            else:
                proc.kill()
                proc.wait()
            proc.stderr.close()
        self.atomic.__exit__(exc_type, exc, tb)
