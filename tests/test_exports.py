import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from video3d.cli import app
from video3d.exports import CSV_COLUMNS, bvh_text, euler_zxy
from video3d.layouts import H36M17
from video3d.skeleton import NAMES, NODES, fit, forward_kinematics, kabsch, rotation_between

from .conftest import SAMPLE, SAMPLE_GT

runner = CliRunner()


def rotation_zxy(angles: np.ndarray) -> np.ndarray:
    """R = Rz(z) Rx(x) Ry(y) from (..., 3) angles in degrees: the inverse of euler_zxy, for checking it."""
    z, x, y = np.radians(angles[..., 0]), np.radians(angles[..., 1]), np.radians(angles[..., 2])
    c, s = np.cos, np.sin
    Rz = np.stack([c(z), -s(z), 0 * z, s(z), c(z), 0 * z, 0 * z, 0 * z, 1 + 0 * z], -1).reshape(z.shape + (3, 3))
    Rx = np.stack([1 + 0 * x, 0 * x, 0 * x, 0 * x, c(x), -s(x), 0 * x, s(x), c(x)], -1).reshape(x.shape + (3, 3))
    Ry = np.stack([c(y), 0 * y, s(y), 0 * y, 1 + 0 * y, 0 * y, -s(y), 0 * y, c(y)], -1).reshape(y.shape + (3, 3))
    return Rz @ Rx @ Ry


def walking_world():
    gt = np.load(SAMPLE_GT)
    w = gt["keypoints_3d_world"].astype(np.float64)
    w[..., :2] -= w[0, 0, :2]
    return w


def test_euler_zxy_round_trip():
    angles = np.random.default_rng(0).uniform(-80, 80, size=(50, 3))
    np.testing.assert_allclose(euler_zxy(rotation_zxy(angles)), angles, atol=1e-9)


def test_rotation_helpers():
    a = np.array([[1.0, 0, 0], [0, 1.0, 0], [1.0, 0, 0]])
    b = np.array([[0, 1.0, 0], [0, 0, 1.0], [-1.0, 0, 0]])  # the last: opposite directions
    R = rotation_between(a, b)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", R, a), b, atol=1e-12)
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(6, 3))
    true = rotation_zxy(np.array([30.0, -20.0, 50.0]))
    np.testing.assert_allclose(kabsch(pts, pts @ true.T), true, atol=1e-9)


def test_fit_reproduces_a_rigid_motion_exactly():
    w = walking_world()
    skel = fit(w)
    np.testing.assert_allclose(skel.positions, w, atol=1e-6)
    np.testing.assert_allclose(forward_kinematics(skel.rest, skel.root, skel.local), w, atol=1e-6)


def test_fit_holds_the_nearest_pose_over_missing_frames():
    w = walking_world()
    w[10:14] = np.nan
    skel = fit(w)
    assert skel.filled[10:14].all() and not skel.filled[9]
    np.testing.assert_allclose(skel.positions[11], skel.positions[9], atol=1e-9)
    np.testing.assert_allclose(skel.positions[12], skel.positions[14], atol=1e-9)


def parse_bvh(text: str) -> tuple[list[str], np.ndarray, float]:
    lines = text.splitlines()
    names = [ln.split()[1] for ln in lines if ln.strip().startswith(("ROOT", "JOINT"))]
    m = lines.index("MOTION")
    frame_time = float(lines[m + 2].split(":")[1])
    motion = np.array([[float(v) for v in ln.split()] for ln in lines[m + 3:]])
    return names, motion, frame_time


@pytest.mark.parametrize("up", ["y", "z"])
def test_bvh_structure(up):
    skel = fit(walking_world())
    names, motion, frame_time = parse_bvh(bvh_text(skel, 25.0, up))
    assert names == [n.name for n in NODES] and set(NAMES) <= set(names)
    assert motion.shape == (165, 6 + 3 * (len(NODES) - 1))
    assert frame_time == pytest.approx(0.04)
    up_axis = 1 if up == "y" else 2
    np.testing.assert_allclose(motion[:, up_axis], skel.root[:, 2], atol=1e-5)  # root height on the up axis


@pytest.mark.slow
@pytest.mark.parametrize("up", ["y", "z"])
def test_blender_imports_our_bvh_at_the_right_positions(tmp_path, up):
    if shutil.which("blender") is None:
        pytest.skip("Blender is not installed (Debian: apt-get install blender)")
    w = walking_world()
    skel = fit(w)
    (tmp_path / "walk.bvh").write_text(bvh_text(skel, 25.0, up))
    script = Path(__file__).with_name("blender_read_bvh.py")
    subprocess.run(["blender", "-b", "--factory-startup", "--python", str(script), "--", str(tmp_path / "walk.bvh"),
                    up, str(tmp_path / "out.json")], check=True, capture_output=True, timeout=600)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["fps"] == pytest.approx(25.0)
    pos = np.array([[out["frames"][str(t)][n] for n in NAMES] for t in range(len(out["frames"]))])
    assert pos.shape == w.shape
    assert np.abs(pos - w).max() < 0.003  # within 3 mm of the npz positions, every joint and frame


# --- through the CLI ------------------------------------------------------------------------------
@pytest.fixture
def lifted(tmp_path, random_checkpoint):
    kp = np.load(SAMPLE_GT)["keypoints_2d"][None].astype(np.float32)  # the sample's true 2D, H36M layout
    kp[0, 50:53] = np.nan  # a short gap
    np.savez(tmp_path / "walk_2d.npz", keypoints_2d=kp, layout_2d="h36m17", frame_size=[640, 480], fps=25.0)
    r = runner.invoke(app, ["lift", str(tmp_path / "walk_2d.npz"), "--weights", str(random_checkpoint),
                            "--export", "npz,json,csv,bvh"])
    assert r.exit_code == 0, r.stderr
    return tmp_path


def test_lift_exports_every_format(lifted):
    d = np.load(lifted / "walk_3d.npz")
    assert d["keypoints_3d_world"].shape == (1, 165, 17, 3) and str(d["rebase"]) == "ground"
    rows = list(csv.reader((lifted / "walk_3d.csv").open()))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 1 + 165 * 17
    assert rows[1][4] == "pelvis" and rows[1][5:7] == ["1", "1"] and rows[1][7:10] == ["0.00000"] * 3
    doc = json.loads((lifted / "walk_3d.json").read_text())
    assert doc["units"] == "metres" and doc["joints"] == list(H36M17.joints) and doc["fps"] == 25.0
    person = doc["persons"][0]
    assert len(person["keypoints_3d_world"]) == 165 and person["valid"][51] in (True, False)
    names, motion, _ = parse_bvh((lifted / "walk_3d_0.bvh").read_text())
    assert motion.shape[0] == 165


def test_world_positions_are_the_rigid_skeleton(lifted):
    d = np.load(lifted / "walk_3d.npz")
    w = d["keypoints_3d_world"][0]
    bones = np.linalg.norm(w[:, 1:] - w[:, [H36M17.parents[j] for j in range(1, 17)]], axis=-1)
    valid = d["valid"][0]
    assert np.ptp(bones[valid], axis=0).max() < 1e-4  # constant bone lengths
    assert np.percentile(np.minimum(w[valid, 3, 2], w[valid, 6, 2]), 5) == pytest.approx(0, abs=1e-4)


def test_export_command_converts_an_npz(lifted, tmp_path):
    out = tmp_path / "again"
    r = runner.invoke(app, ["export", str(lifted / "walk_3d.npz"), "--format", "bvh,csv", "-o", str(out), "--up", "z"])
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "again_0.bvh").is_file() and (tmp_path / "again.csv").is_file()
    r = runner.invoke(app, ["export", str(lifted / "walk_3d.npz"), "--format", "fbx"])
    assert r.exit_code == 2 and "Invalid value for '--format'" in r.stderr and "unknown export format fbx" in r.stderr
    before = sorted(lifted.iterdir())
    r = runner.invoke(app, ["export", str(lifted / "walk_3d.npz"), "--format", "npz"])  # what it is already
    assert r.exit_code == 2 and "'--format': the poses are an npz already; choose json, csv or bvh" in r.stderr
    assert sorted(lifted.iterdir()) == before and not r.stdout
    r = runner.invoke(app, ["export", str(lifted / "walk_3d.npz"), "--format", "bvh"])  # lift wrote that BVH
    assert r.exit_code == 3 and "walk_3d_0.bvh exists; pass --force" in r.stderr


def test_render_reports_no_work_it_did_not_do(lifted, tmp_path):
    assert np.load(lifted / "walk_3d.npz")["input_scale"][0] != 1.0  # lift rescaled this person
    r = runner.invoke(app, ["render", str(SAMPLE), str(lifted / "walk_3d.npz"), "-o", str(tmp_path / "walk.mp4"),
                            "--quality", "fast"])
    assert r.exit_code == 0, r.stderr
    assert "render" in r.stderr and "scaled x" not in r.stderr and "left/right" not in r.stderr


def test_unknown_smoothing_preset_is_refused(lifted, random_checkpoint):
    r = runner.invoke(app, ["lift", str(lifted / "walk_2d.npz"), "--smooth", "max", "--weights",
                            str(random_checkpoint)])
    assert r.exit_code == 2 and "--smooth" in r.stderr
