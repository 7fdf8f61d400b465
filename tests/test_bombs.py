"""Memory bombs (issue 23, item 1): small files that declare or name gigabytes. Each is refused as bad input
(exit 2, one line) before the memory is allocated; the peak memory of the command, measured by the kernel for the
child process (``os.wait4``), stays under 1 GB, where importing torch alone takes about 0.65 GB.
"""

from __future__ import annotations

import io
import json
import lzma
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib import format as npy_format

from .conftest import ROOT, tiny_h36m

PEAK_LIMIT_MB = 1000


# The child writes its own peak (VmHWM: the high-water mark of the memory it maps after exec) when it exits: the
# kernel's rusage of a forked child starts from the parent's size, which here is pytest's with torch loaded.
MEASURED = """import atexit, sys
report = sys.argv.pop(1)
def peak():
    with open(report, "w") as out:
        out.write(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
atexit.register(peak)
sys.argv[0] = "video3d"
from video3d.cli import main
main()
"""


def run_measured(args: list, tmp: Path) -> tuple[int, str, float]:
    """(exit code, stderr, peak resident memory in MB) of ``video3d ARGS`` in a child process."""
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    env.pop("YOLO_CONFIG_DIR", None)
    report = tmp / "peak_kb.txt"
    report.unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-c", MEASURED, str(report), *map(str, args)], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert report.exists(), f"the run left no peak (killed?): {proc.returncode} {proc.stderr[-2000:]}"
    return proc.returncode, proc.stderr, int(report.read_text()) / 1024


def npy_member(archive: zipfile.ZipFile, name: str, shape: tuple, dtype: str = "<f4", inflate: bool = True) -> None:
    """A .npy entry declaring ``shape``; with ``inflate`` its zeros are really there (deflated), else only the
    header is."""
    with archive.open(f"{name}.npy", "w", force_zip64=True) as f:
        npy_format.write_array_header_1_0(f, {"descr": dtype, "fortran_order": False, "shape": shape})
        left = int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize if inflate else 0
        chunk = bytes(64 << 20)
        while left > 0:
            f.write(chunk[:min(left, len(chunk))])
            left -= len(chunk)


def plain_members(archive: zipfile.ZipFile, **arrays) -> None:
    for key, value in arrays.items():
        buf = io.BytesIO()
        np.save(buf, np.asarray(value))
        archive.writestr(f"{key}.npy", buf.getvalue())


@pytest.fixture(scope="module")
def deflate_bomb(tmp_path_factory) -> Path:
    """keypoints_2d (1, 15e6, 17, 3) float32 = 3.1 GB of zeros behind 13 MB of deflate."""
    path = tmp_path_factory.mktemp("bombs") / "bomb_2d.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        npy_member(archive, "keypoints_2d", (1, 15_000_000, 17, 3))
        plain_members(archive, layout_2d="coco17", frame_size=[640, 480], fps=25.0)
    assert path.stat().st_size < 20 << 20
    return path


def test_a_deflate_bomb_of_keypoints_is_refused_before_it_inflates(deflate_bomb, tmp_path, random_checkpoint):
    code, err, peak = run_measured(["lift", deflate_bomb, "--weights", random_checkpoint, "-o", tmp_path / "o.npz"],
                                   tmp_path)
    assert code == 2 and "was not loaded: it inflates to 2.85 GiB" in err and len(err.strip().splitlines()) == 1, err
    assert peak < PEAK_LIMIT_MB, f"peak memory {peak:.0f} MB"
    assert not (tmp_path / "o.npz").exists()


def test_a_header_declaring_terabytes_is_refused(tmp_path, random_checkpoint):
    """1 KB declaring a (1, 1e10, 17, 3) array (numpy would try to allocate 1.86 TiB first)."""
    path = tmp_path / "header.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        npy_member(archive, "keypoints_2d", (1, 10 ** 10, 17, 3), inflate=False)
        plain_members(archive, layout_2d="coco17", frame_size=[640, 480], fps=25.0)
    code, err, peak = run_measured(["lift", path, "--weights", random_checkpoint], tmp_path)
    assert code == 2 and "its arrays declare 1,900 GiB (keypoints_2d" in err, err
    assert peak < PEAK_LIMIT_MB


def test_one_array_named_a_hundred_thousand_times_is_refused(tmp_path, random_checkpoint):
    """A VideoPose3D-style dataset whose one (1000, 32, 3) array the pickle memo names 100,000 times: a small file,
    77 GB once each take is copied."""
    shared = np.zeros((1000, 32, 3))
    path = tmp_path / "memo.npz"
    np.savez(path, positions_3d=np.array({"S9": {f"Walking {i}": shared for i in range(100_000)}}, dtype=object))
    assert path.stat().st_size < 4 << 20
    code, err, peak = run_measured(["evaluate", "--data", path, "--weights", random_checkpoint], tmp_path)
    assert code == 2 and "arrays counted each time they are named" in err, err
    assert peak < PEAK_LIMIT_MB, f"peak memory {peak:.0f} MB"


def test_deep_nesting_in_a_dataset_is_refused(tmp_path):
    from video3d.untrusted import TooLargeError, materialised_bytes

    deep: list = []
    for _ in range(1000):
        deep = [deep]
    with pytest.raises(TooLargeError, match="nests more than 64 levels"):
        materialised_bytes(deep)
    assert materialised_bytes({"a": [np.zeros(10), (np.zeros(5, np.float32),)]}) == 80 + 20 + 8


def packed(arrays: dict, takes: list) -> bytes:
    arrays = {**arrays, "index": np.frombuffer(json.dumps({"format": "video3d.h36m-packed.v1", "unit_m": 1e-4,
                                                            "takes": takes}).encode(), np.uint8)}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return lzma.compress(buf.getvalue(), preset=1)


def test_a_packed_file_whose_takes_all_name_one_big_array_is_refused(tmp_path):
    """120 takes naming one (1e6, 17, 3) array: 15 KB of xz, 24 GB of positions once decoded."""
    path = tmp_path / "takes.xz"
    path.write_bytes(packed({"t00_000_first": np.zeros((17, 3), np.int32),
                             "t00_000": np.zeros((1_000_000, 17, 3), np.int16)},
                            [{"subject": "S1", "action": f"A {i}", "key": "t00_000"} for i in range(120)]))
    assert path.stat().st_size < 200_000
    code, err, peak = run_measured(["data", "unpack", path, tmp_path / "out.npz"], tmp_path)
    assert code == 2 and "its 120 takes name 22.8 GiB of positions" in err, err
    assert peak < PEAK_LIMIT_MB, f"peak memory {peak:.0f} MB"
    assert not (tmp_path / "out.npz").exists()


def test_a_packed_file_inflating_past_the_limit_is_refused_not_truncated(tmp_path, monkeypatch):
    import video3d.data.h36m as h36m
    from video3d.untrusted import TooLargeError

    monkeypatch.setattr(h36m, "MAX_UNPACKED_BYTES", 1 << 20)  # the same rule as at 1 GiB, on a 2 MB file
    path = tmp_path / "zeros.xz"
    path.write_bytes(lzma.compress(bytes(2 << 20)))
    with pytest.raises(TooLargeError, match="inflates past"):
        h36m.read_packed(path)
    real = tiny_h36m(tmp_path / "tiny.npz", frames=30)
    from video3d.data.pack import pack

    pack(real, tmp_path / "tiny.xz")
    assert h36m.read_packed(tmp_path / "tiny.xz")  # a real packed file is well within it


def checkpoint_with(tmp: Path, source: Path, name: str, change) -> Path:
    ckpt = torch.load(source, weights_only=True)
    change(ckpt)
    torch.save(ckpt, tmp / name)
    return tmp / name


def test_weights_with_an_extra_large_tensor_are_refused_unread(tmp_path, random_checkpoint):
    """An extra 0.5 GB fp16 tensor in the state dict: refused from the keys, its data never read (it was read,
    and made float32, before the keys were checked)."""
    path = checkpoint_with(tmp_path, random_checkpoint, "extra.pt", lambda c: c["state_dict"].__setitem__(
        "extra", torch.zeros(250_000_000, dtype=torch.float16)))
    code, err, peak = run_measured(["lift", two_d(tmp_path), "--weights", path], tmp_path)
    assert code == 2 and "does not fit its own gastnet configuration (an unexpected entry 'extra')" in err, err
    assert peak < PEAK_LIMIT_MB, f"peak memory {peak:.0f} MB"


def test_a_weights_file_inflating_past_the_limit_is_refused(tmp_path, random_checkpoint, monkeypatch):
    import video3d.lifters.base as base

    monkeypatch.setattr(base, "MAX_CHECKPOINT_BYTES", 1 << 20)
    path = tmp_path / "big.pt"
    path.write_bytes(random_checkpoint.read_bytes())
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("random_gastnet_27f/data/extra", bytes(30 << 20))
    with pytest.raises(base.CheckpointError, match="inflates to"):
        base.load_checkpoint(path)


@pytest.mark.parametrize("field,value,phrase", [
    ("global_heads", 10 ** 9, "parameters, more than the 200,000,000"),  # 1.15 TB of C_k
    ("channels", -5, "does not build a gastnet model"),
    ("parents", [99] * 17, "does not build a gastnet model"),
])
def test_a_config_asking_for_too_much_or_nonsense_is_refused_before_building(field, value, phrase, tmp_path,
                                                                             random_checkpoint):
    path = checkpoint_with(tmp_path, random_checkpoint, "config.pt", lambda c: c["config"].__setitem__(field, value))
    code, err, peak = run_measured(["lift", two_d(tmp_path), "--weights", path], tmp_path)
    assert code == 2 and phrase in err and len(err.strip().splitlines()) == 1, err
    assert peak < PEAK_LIMIT_MB


def test_weights_with_an_int_in_the_state_dict_are_refused(tmp_path, random_checkpoint):
    path = checkpoint_with(tmp_path, random_checkpoint, "int.pt", lambda c: c["state_dict"].__setitem__(
        next(iter(c["state_dict"])), 7))
    code, err, _ = run_measured(["lift", two_d(tmp_path), "--weights", path], tmp_path)
    assert code == 2 and "a non-tensor under" in err, err


def test_the_shipped_weights_still_load_and_plan_as_built():
    from video3d.lifters import create_lifter
    from video3d.lifters.base import plan_model

    for name in ("gastnet", "poseformer", "stcformer"):
        lifter = create_lifter(name, device="cpu")
        planned = plan_model(lifter.spec, lifter.config)
        assert planned == {k: tuple(v.shape) for k, v in lifter.model.state_dict().items()}


def two_d(tmp: Path) -> Path:
    from .test_hostile import two_d_npz

    return two_d_npz(tmp / "good_2d.npz", 40)


def test_training_refuses_a_model_option_asking_for_too_much_at_once():
    """``train --model-option channels=100000000`` allocated for 42 s before failing; now the plan refuses it."""
    from video3d.lifters.base import new_model

    with pytest.raises(ValueError, match="parameters, more than the 200,000,000"):
        new_model("gastnet", 27, channels=100_000_000)
