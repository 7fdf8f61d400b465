"""A person cut by the frame's edge: joints not seen for long are left out of the 3D, never guessed silently
(issue 28, item 4). The lifter still gets a whole skeleton (the lost limbs hung from the torso,
``tracks.guess_unseen``), so the seen joints' 3D holds; the outputs mark and leave out the rest."""

import csv
import json

import numpy as np
import pytest

from video3d.exports import csv_text, json_text
from video3d.pipeline import lift, place
from video3d.render import Scene3D, SideBySideRenderer
from video3d.results import PoseResult, load_npz
from video3d.sequence import PoseSequence

from .conftest import SAMPLE_GT, WEIGHTS, need

LEGS = [2, 3, 5, 6]  # H36M-17 knees and ankles
UPPER = [0, 1, 4, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]


def sample_result(cut_legs: bool) -> PoseResult:
    with np.load(SAMPLE_GT) as gt:
        kp = gt["keypoints_2d"].astype(np.float32)
        size = tuple(int(v) for v in gt["frame_size"])
    if cut_legs:  # below the frame's bottom edge for the whole clip
        kp[:, LEGS] = np.nan
    conf = np.where(np.isnan(kp[..., 0]), 0.0, 1.0).astype(np.float32)
    return PoseResult([PoseSequence(kp, conf, 25.0, "h36m17", track_id=1, frame_size=size)], 25.0, size)


@pytest.fixture(scope="module")
def lifted():
    weights = need(WEIGHTS, "the shipped GAST-Net weights", "not trained yet")
    full = lift(sample_result(False), "gastnet", weights=weights, smooth="none")
    cut = place(lift(sample_result(True), "gastnet", weights=weights, smooth="none"))
    return full, cut


def test_the_seen_upper_body_holds_and_the_lost_legs_are_marked(lifted):
    full, cut = lifted
    seen = cut.joints_seen()[0]
    assert not seen[:, LEGS].any() and seen[:, UPPER].all()
    assert full.joints_seen().all()
    # the upper body's 3D moves 20 mm (mean) from the whole-body lift; holding the lost knees and ankles at the
    # hips, as the filling did before, moved it 46 mm (a folded figure)
    err = np.linalg.norm(cut.keypoints_3d()[0][:, UPPER] - full.keypoints_3d()[0][:, UPPER], axis=-1).mean()
    assert err < 0.03


def test_the_outputs_leave_the_lost_joints_out(lifted, tmp_path):
    _, cut = lifted
    arrays = cut.to_arrays()
    assert np.isnan(arrays["keypoints_3d"][0][:, LEGS]).all() and np.isfinite(arrays["keypoints_3d"][0][:, UPPER]).all()
    assert np.isnan(arrays["keypoints_3d_world"][0][:, LEGS]).all()
    assert arrays["joints_seen"].shape == (1, cut.num_frames, 17) and arrays["valid"].all()
    back = load_npz(cut.save_npz(tmp_path / "cut.npz"))
    np.testing.assert_array_equal(back.joints_seen(), cut.joints_seen())
    assert back.valid().all()
    doc = json.loads(json_text(cut))
    frame = doc["persons"][0]["keypoints_3d_world"][10]
    assert [frame[j] is None for j in range(17)] == [j in LEGS for j in range(17)]
    rows = [r for r in csv.DictReader(csv_text(cut).splitlines()) if r["frame"] == "10"]
    assert [r["seen"] for r in rows] == ["0" if j in LEGS else "1" for j in range(17)]
    assert rows[2]["world_z_m"] == "" and rows[11]["world_z_m"] != ""


def test_the_upper_body_is_drawn_alone_above_the_floor(lifted):
    _, cut = lifted
    poses = cut.seen_only(cut.world.poses)
    scene = Scene3D(poses, [1])
    r = SideBySideRenderer(cut.frame_size, np.full((1, cut.num_frames, 17, 2), np.nan, np.float32), "h36m17", scene)
    img = r.render_3d(10)
    assert not np.array_equal(img, r._draw_grid(10))  # drawn
    with_guesses = SideBySideRenderer(cut.frame_size, np.full((1, cut.num_frames, 17, 2), np.nan, np.float32),
                                      "h36m17", Scene3D(cut.world.poses, [1]))
    assert not np.array_equal(img, with_guesses.render_3d(10))  # ... without the legs
    # the shoulders stand at an adult's height: the person was placed with the guessed legs on the floor
    assert 1.2 < float(np.nanmedian(poses[0][:, [11, 14], 2])) < 1.7


def test_a_bvh_hangs_the_lost_legs_the_same_from_the_result_and_its_npz(lifted, tmp_path):
    from video3d.exports import fit_people

    _, cut = lifted
    fresh = fit_people(cut)[0]
    again = fit_people(load_npz(cut.save_npz(tmp_path / "cut.npz")))[0]
    assert fresh is not None and again is not None
    np.testing.assert_allclose(again.positions, fresh.positions, atol=1e-3)  # float32 in the npz
    knee, hip = fresh.positions[:, 2], fresh.positions[:, 1]
    np.testing.assert_allclose(knee[:, :2], hip[:, :2], atol=1e-3)  # straight down from the hip
    assert (knee[:, 2] < hip[:, 2] - 0.3).all()
