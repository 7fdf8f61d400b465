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

import functools
import os
import re
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
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


@dataclass
class DecodeReport:
    """What a ``read_frames`` pass saw, filled in when it ends: frames decoded and ffmpeg's complaints."""

    frames: int = 0
    errors: list[str] = field(default_factory=list)

    def problem(self, info: VideoInfo) -> str | None:
        """One line if the video looks truncated or damaged: fewer frames than the container declares (beyond
        the rounding of a duration-based count), or decoding errors; None if it decoded cleanly."""
        short = info.frame_count is not None and self.frames < info.frame_count - max(2, info.frame_count // 100)
        if not short and not self.errors:
            return None
        declared = f" of the {info.frame_count} frames its header declares" if info.frame_count else ""
        why = f" (ffmpeg: {self.errors[0]})" if self.errors else ""
        return f"{info.path}: decoded {self.frames}{declared}{why}; the video is truncated or damaged"


def read_frames(info: VideoInfo, report: DecodeReport | None = None) -> Iterator[np.ndarray]:
    """Yield (H, W, 3) uint8 BGR frames, one per frame of the input; never more than one in memory.
    ``report``, if given, is filled in when the frames run out (see ``DecodeReport``)."""
    import ffmpeg  # ffmpeg-python

    cmd = (
        ffmpeg.input(str(info.path))
        .output("pipe:", format="rawvideo", pix_fmt="bgr24", fps_mode="passthrough")
        .global_args("-nostdin", "-loglevel", "error")
        .compile(cmd=ffmpeg_exe())
    )
    # ffmpeg's complaints go to an unlinked temporary file: a pipe read only at the end would block ffmpeg once
    # a damaged video filled it, and the file vanishes with the process whatever ends it
    with tempfile.TemporaryFile() as err_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err_file, bufsize=0)
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
            code = proc.wait()
            err_file.seek(0)
            err = err_file.read().decode(errors="replace")
    if code != 0 and count == 0:
        raise InputError(f"{info.path}: ffmpeg could not decode any frame ({_last_error_line(err)})")
    if count == 0:
        raise InputError(f"{info.path} has no frames")
    if report is not None:
        report.frames = count
        report.errors = [ln.strip() for ln in err.splitlines() if ln.strip()]


def frame_timestamps(info: VideoInfo) -> np.ndarray | None:
    """Presentation times of the video's frames in seconds from the first, from one pass over the container's
    packets (no decoding: fast); None if the container gives none. Remembered per file (path, size, mtime):
    detect, the frame-count checks and render all ask for the same video's times."""
    st = info.path.stat()
    ts = _frame_timestamps(str(info.path), st.st_size, st.st_mtime_ns)
    return None if ts is None else ts.copy()


@functools.lru_cache(maxsize=8)
def _frame_timestamps(path: str, size: int, mtime_ns: int) -> np.ndarray | None:
    cmd = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", path, "-map", "0:v:0", "-c", "copy",
           "-f", "framecrc", "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    num, den, pts = None, None, []
    for line in proc.stdout.splitlines():
        if line.startswith("#tb 0:"):
            num, den = (int(v) for v in line.split(":", 1)[1].strip().split("/"))
        elif line.startswith("0,"):
            fields = [f.strip() for f in line.split(",")]
            try:
                pts.append(int(fields[2]))
            except (IndexError, ValueError):  # NOPTS
                return None
    if not pts or not num or not den:
        return None
    ticks = np.sort(np.array(pts, np.int64))
    return (ticks - ticks[0]) * (num / den)


def is_constant_rate(timestamps: np.ndarray, fps: float) -> bool:
    """Every frame within half a frame of where a constant ``fps`` puts it."""
    return bool(np.all(np.abs(timestamps - np.arange(len(timestamps)) / fps) < 0.5 / fps))


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
    """Encode BGR frames to H.264 (yuv420p, even size) with the source's audio. Use as a context manager: the
    file appears at ``path`` only when the block succeeds.

    Frame times: without ``timestamps``, frame i shows at i / fps (``fps_fraction``, the source's exact rate);
    with ``timestamps`` (seconds, one per frame, from ``frame_timestamps`` of a variable-frame-rate source),
    each frame keeps its own time, so the picture stays with the audio. Raw frames carry no times through a
    pipe, so that path sends ffmpeg a minimal Matroska stream (``MatroskaFrames``) whose blocks do."""

    def __init__(self, path: str | Path, width: int, height: int, fps_fraction: str,
                 audio_from: VideoInfo | None = None, duration: float | None = None, crf: int = 20,
                 preset: str = "veryfast", force: bool = False, timestamps: np.ndarray | None = None):
        self.width, self.height = width, height
        self.fps_fraction, self.audio_from, self.duration = fps_fraction, audio_from, duration
        self.crf, self.preset = crf, preset
        self.timestamps = None if timestamps is None else np.asarray(timestamps, np.float64)
        self.atomic = AtomicPath(path, force=force)
        self.frames = 0
        self._proc = None
        self._mkv: MatroskaFrames | None = None

    def _command(self, target: Path) -> list[str]:
        import ffmpeg

        if self.timestamps is None:
            video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="bgr24", s=f"{self.width}x{self.height}",
                                 framerate=self.fps_fraction)
            times = {}
        else:
            video = ffmpeg.input("pipe:", format="matroska")
            times = {"fps_mode": "passthrough"}  # each frame at its own time, none dropped or repeated
        streams = [video]
        if self.audio_from is not None and self.audio_from.has_audio:
            # the audio is cut to the video's duration rather than the video to the audio's ('-shortest'
            # would drop the last frame when the audio track is a little shorter)
            trim = {"t": f"{self.duration:.6f}"} if self.duration else {}
            streams.append(ffmpeg.input(str(self.audio_from.path), **trim).audio)
        pad = "pad=ceil(iw/2)*2:ceil(ih/2)*2"
        out = ffmpeg.output(
            *streams, str(target), vcodec="libx264", pix_fmt="yuv420p", crf=self.crf, preset=self.preset,
            vf=pad, movflags="+faststart", format="mp4", **times,
            **({"acodec": "aac"} if len(streams) > 1 else {}),
        ).global_args("-nostdin", "-loglevel", "error", "-y")
        return out.compile(cmd=ffmpeg_exe())

    def __enter__(self) -> "VideoWriter":
        self.atomic.__enter__()
        try:
            self._proc = subprocess.Popen(self._command(self.atomic.tmp), stdin=subprocess.PIPE,
                                          stderr=subprocess.PIPE)
            if self.timestamps is not None:
                self._mkv = MatroskaFrames(self.width, self.height)
                self._proc.stdin.write(self._mkv.header())
        except BaseException:
            self.atomic.__exit__(Video3DError, None, None)
            raise
        return self

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"expected a ({self.height}, {self.width}, 3) uint8 frame, got {frame.shape} {frame.dtype}")
        if self._mkv is not None:
            if self.frames >= len(self.timestamps):
                raise ValueError(f"more frames than the {len(self.timestamps)} timestamps")
            data = self._mkv.block(frame, float(self.timestamps[self.frames]))
        else:
            data = np.ascontiguousarray(frame).tobytes()
        try:
            self._proc.stdin.write(data)
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


class MatroskaFrames:
    """The smallest Matroska stream ffmpeg reads uncompressed video with per-frame times from: an EBML header, a
    Segment of unknown size (a stream), Info (times in microseconds), one V_UNCOMPRESSED track of I420 frames,
    then one Cluster per frame holding its time and one SimpleBlock. Frames are padded to even sizes (I420
    halves the chroma planes), as the encoder's own pad filter would, with black at the right and bottom."""

    SCALE_NS = 1000  # TimestampScale: one tick is a microsecond

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.even = (width + width % 2, height + height % 2)

    @staticmethod
    def _size(n: int) -> bytes:  # an EBML variable-length size
        for length in range(1, 9):
            if n < (1 << (7 * length)) - 1:
                return (n | (1 << (7 * length))).to_bytes(length, "big")
        raise ValueError(f"element too large: {n} bytes")

    @classmethod
    def _element(cls, ident: bytes, payload: bytes) -> bytes:
        return ident + cls._size(len(payload)) + payload

    @classmethod
    def _uint(cls, ident: bytes, value: int) -> bytes:
        return cls._element(ident, int(value).to_bytes(max(1, (int(value).bit_length() + 7) // 8), "big"))

    def header(self) -> bytes:
        e, u = self._element, self._uint
        ebml = e(b"\x1a\x45\xdf\xa3", u(b"\x42\x86", 1) + u(b"\x42\xf7", 1) + u(b"\x42\xf2", 4)
                 + u(b"\x42\xf3", 8) + e(b"\x42\x82", b"matroska") + u(b"\x42\x87", 4) + u(b"\x42\x85", 2))
        info = e(b"\x15\x49\xa9\x66", u(b"\x2a\xd7\xb1", self.SCALE_NS) + e(b"\x4d\x80", b"video3d")
                 + e(b"\x57\x41", b"video3d"))
        video = e(b"\xe0", u(b"\xb0", self.even[0]) + u(b"\xba", self.even[1]) + e(b"\x2e\xb5\x24", b"I420"))
        track = e(b"\xae", u(b"\xd7", 1) + u(b"\x73\xc5", 1) + u(b"\x83", 1) + e(b"\x86", b"V_UNCOMPRESSED") + video)
        unknown_size = b"\x01\xff\xff\xff\xff\xff\xff\xff"
        return ebml + b"\x18\x53\x80\x67" + unknown_size + info + e(b"\x16\x54\xae\x6b", track)

    def block(self, frame: np.ndarray, seconds: float) -> bytes:
        import cv2

        if self.even != (self.width, self.height):
            frame = cv2.copyMakeBorder(frame, 0, self.even[1] - self.height, 0, self.even[0] - self.width,
                                       cv2.BORDER_CONSTANT, value=(0, 0, 0))
        i420 = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)  # (H * 3 / 2, W): Y, then U and V at half size
        simple_block = b"\x81" + struct.pack(">h", 0) + b"\x80" + i420.tobytes()  # track 1, +0 ticks, keyframe
        ticks = round(seconds * 1e9 / self.SCALE_NS)
        return self._element(b"\x1f\x43\xb6\x75", self._uint(b"\xe7", ticks) + self._element(b"\xa3", simple_block))
