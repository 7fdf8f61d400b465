import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from video3d.errors import DetectorError, DeviceError, InputError, OutputError, Video3DError
from video3d.video import VideoWriter, ffmpeg_exe, parse_ffmpeg_header, probe, read_frames

AVI_HEADER = """Input #0, avi, from 'apart.avi':
  Metadata:
    software        : Lavf55.12.100
  Duration: 00:00:02.90, start: 0.000000, bitrate: 10288 kb/s
  Stream #0:0: Video: mpeg4 (Simple Profile) (DIVX / 0x58564944), yuv420p, 1920x1080 [SAR 1:1 DAR 16:9], 10386 kb/s, 30 fps, 30 tbr, 30 tbn
At least one output file must be specified"""

PHONE_HEADER = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'phone.mp4':
  Duration: 00:00:10.01, start: 0.000000, bitrate: 17000 kb/s
  Stream #0:0[0x1](eng): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), 1920x1080, 16900 kb/s, 29.97 fps, 29.97 tbr, 90k tbn (default)
    Metadata:
      handler_name    : VideoHandle
    Side data:
      displaymatrix: rotation of -90.00 degrees
  Stream #0:1[0x2](eng): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp, 256 kb/s (default)"""

NO_VIDEO_HEADER = """Input #0, wav, from 'a.wav':
  Duration: 00:00:01.00, bitrate: 1411 kb/s
  Stream #0:0: Audio: pcm_s16le ([1][0][0][0] / 0x0001), 44100 Hz, 2 channels, s16, 1411 kb/s"""


@pytest.mark.parametrize("text,expected", [
    (AVI_HEADER, dict(width=1920, height=1080, fps=30.0, fps_fraction="30/1", frame_count=87, rotation=0,
                      has_audio=False, codec="mpeg4")),
    (PHONE_HEADER, dict(width=1080, height=1920, fps=29.97, fps_fraction="30000/1001", frame_count=300, rotation=90,
                        has_audio=True, codec="h264")),
])
def test_parse_header_table(text, expected):
    info = parse_ffmpeg_header(text, Path("x"))
    for key, value in expected.items():
        assert getattr(info, key) == pytest.approx(value) if isinstance(value, float) else getattr(info, key) == value


def test_header_without_video_is_rejected():
    with pytest.raises(InputError, match="no video stream"):
        parse_ffmpeg_header(NO_VIDEO_HEADER, Path("a.wav"))


def make_video(path: Path, frames: int = 12, size=(96, 64), fps: str = "25/1", audio: bool = False) -> Path:
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={size[0]}x{size[1]}:rate={fps}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    cmd += ["-frames:v", str(frames), "-pix_fmt", "yuv420p"]
    if audio:
        cmd += ["-c:a", "aac", "-shortest"]
    subprocess.run(cmd + [str(path)], check=True)
    return path


def test_probe_and_read_every_frame(tmp_path):
    info = probe(make_video(tmp_path / "v.mp4", frames=12))
    assert (info.width, info.height, info.fps) == (96, 64, 25.0)
    frames = list(read_frames(info))
    assert len(frames) == 12 and frames[0].shape == (64, 96, 3) and frames[0].dtype == np.uint8


def test_ntsc_rate_is_kept_exactly(tmp_path):
    src = probe(make_video(tmp_path / "ntsc.mp4", frames=30, fps="30000/1001"))
    assert src.fps_fraction == "30000/1001"
    with VideoWriter(tmp_path / "out.mp4", 96, 64, src.fps_fraction) as w:
        for f in read_frames(src):
            w.write(f)
    out = probe(tmp_path / "out.mp4")
    assert out.fps == pytest.approx(29.97, abs=0.01) and len(list(read_frames(out))) == 30


@pytest.mark.parametrize("content,match", [
    (None, "no such file"),
    (b"", "is empty"),
    (b"this is not a video at all" * 10, "not a readable video"),
])
def test_probe_bad_inputs(tmp_path, content, match):
    path = tmp_path / "clip.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=match):
        probe(path)


def test_truncated_video_is_reported(tmp_path):
    good = make_video(tmp_path / "good.mp4", frames=12).read_bytes()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(good[: len(good) // 3])
    with pytest.raises(InputError, match=re.escape(f"{bad} is not a readable video")):  # mp4's index is at its end
        probe(bad)


def test_writer_keeps_audio_and_frame_count(tmp_path):
    src = probe(make_video(tmp_path / "a.mp4", frames=25, audio=True))
    assert src.has_audio
    with VideoWriter(tmp_path / "out.mp4", 100, 64, src.fps_fraction, audio_from=src, duration=25 / 25) as w:
        for f in read_frames(src):
            w.write(np.pad(f, ((0, 0), (0, 4), (0, 0))))
    out = probe(tmp_path / "out.mp4")
    assert out.has_audio and (out.width, out.height) == (100, 64)
    assert len(list(read_frames(out))) == 25


def test_writer_is_atomic_on_error_and_refuses_overwrite(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(target, 64, 64, "25/1") as w:
            w.write(np.zeros((64, 64, 3), np.uint8))
            raise RuntimeError("crash in the middle")
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"precious")
    with pytest.raises(OutputError, match="--force"):
        with VideoWriter(target, 64, 64, "25/1"):
            pass
    assert target.read_bytes() == b"precious"


def test_writer_rejects_wrong_frame_size(tmp_path):
    with VideoWriter(tmp_path / "o.mp4", 64, 64, "25/1") as w:
        w.write(np.zeros((64, 64, 3), np.uint8))  # the right size is taken
        with pytest.raises(ValueError, match=r"expected a \(64, 64, 3\) uint8 frame, got \(32, 64, 3\)"):
            w.write(np.zeros((32, 64, 3), np.uint8))
        with pytest.raises(ValueError, match="uint8 frame, got .* float32"):
            w.write(np.zeros((64, 64, 3), np.float32))
    assert probe(tmp_path / "o.mp4").width == 64  # the bad frames did not spoil the file


def test_odd_sizes_are_padded_for_h264(tmp_path):
    with VideoWriter(tmp_path / "o.mp4", 65, 49, "25/1") as w:
        for _ in range(3):
            w.write(np.zeros((49, 65, 3), np.uint8))
    info = probe(tmp_path / "o.mp4")
    assert (info.width, info.height) == (66, 50)


@pytest.mark.parametrize("error,code", [(InputError, 2), (DeviceError, 2), (OutputError, 3), (DetectorError, 4),
                                        (Video3DError, 1)])
def test_each_user_error_is_one_line_and_its_exit_status(error, code, capsys):
    """The README's table of exit statuses: the CLI turns each error into its status and one line on stderr."""
    import typer

    from video3d.cli import run

    def fails():
        raise error("what went wrong")

    with pytest.raises(typer.Exit) as info:
        run(fails)
    assert info.value.exit_code == code
    assert capsys.readouterr().err == "error: what went wrong\n"


def test_rotated_phone_video_is_decoded_upright(tmp_path):
    plain = make_video(tmp_path / "plain.mp4", frames=5, size=(96, 64))
    rotated = tmp_path / "rotated.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-display_rotation", "90", "-i", str(plain), "-c", "copy",
                    str(rotated)], check=True)
    info = probe(rotated)
    assert info.rotation in (90, 270) and (info.width, info.height) == (64, 96)
    frames = list(read_frames(info))
    assert len(frames) == 5 and frames[0].shape == (96, 64, 3)
