"""The end-to-end benchmark's metrics and its clip generator (benchmarks/wild.py, benchmarks/wild_clips.py)."""

from pathlib import Path

import numpy as np
import pytest

from benchmarks.wild import acceleration_error, pooled, pose_metrics, scale_ratio, swap_rate, swapped_frames
from video3d.layouts import H36M17

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "h36m" / "data_3d_h36m_17j.npz"


def poses(T=20, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 0.3, (T, 17, 3))
    p[:, 0] = 0.0  # root-relative
    return p


def test_a_prediction_with_left_and_right_exchanged_counts_as_swapped():
    truth = poses()
    pred = truth.copy()
    pred[5:10] = pred[5:10][:, H36M17.flip_index]
    swapped, counted = swapped_frames(pred, truth)
    assert counted.all() and swapped.tolist() == [5 <= t < 10 for t in range(20)]
    assert swap_rate(pred, truth) == pytest.approx(0.25)
    assert swap_rate(truth, truth) == 0.0


def test_frames_without_limb_joints_are_not_counted():
    truth = poses()
    pred = truth.copy()
    pred[:4] = np.nan
    swapped, counted = swapped_frames(pred, truth)
    assert not counted[:4].any() and counted[4:].all() and not swapped.any()
    assert np.isnan(swap_rate(np.full_like(truth, np.nan), truth))


def test_scale_ratio_is_the_size_of_the_prediction_over_the_truth():
    truth = poses()
    assert scale_ratio(0.8 * truth, truth) == pytest.approx(0.8)
    assert scale_ratio(truth, truth) == pytest.approx(1.0)


def test_acceleration_error_is_zero_for_a_constant_offset_and_counts_valid_triples():
    truth = poses()
    err, n = acceleration_error(truth + 0.05, truth)
    assert err == pytest.approx(0.0, abs=1e-12) and n == 18
    pred = truth.copy()
    pred[10, 3, 0] += 0.01  # one joint off in one frame: its second differences at 9, 10, 11 are 0.01, 0.02, 0.01
    err, n = acceleration_error(pred, truth)
    assert err == pytest.approx((0.01 + 0.02 + 0.01) / (18 * 17))
    pred[4] = np.nan  # frames 3, 4 and 5 lose their triple
    assert acceleration_error(pred, truth)[1] == 15


def test_pose_metrics_in_millimetres_and_pooled_over_clips():
    truth = poses()
    pred = truth + np.array([0.01, 0.0, 0.0])  # 10 mm off everywhere, but the root: root-relative metrics see it
    pred[:, 0] = 0.0
    m = pose_metrics(pred, truth)
    assert m["mpjpe"] == pytest.approx(10.0 * 16 / 17)
    assert m["p_mpjpe"] < m["mpjpe"] and m["none"] == 0.0 and m["swap_3d"] == 0.0
    half = pred.copy()
    half[10:] = np.nan
    m2 = pose_metrics(half, truth)
    assert m2["valid"] == 10 and m2["none"] == pytest.approx(0.5)
    both = pooled([m, m2])
    assert both["valid"] == 30 and both["frames"] == 40 and both["mpjpe"] == pytest.approx(10.0 * 16 / 17)


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_file(), reason="needs ../shared/data/h36m (Human3.6M motion capture)")
def test_clips_are_seeded_keep_the_person_in_the_frame_and_their_truth_projects(tmp_path):
    from benchmarks.wild_clips import HEIGHT_RANGE, generate, load_poses, random_clip_params

    poses_ = load_poses(DATA)
    a = random_clip_params(np.random.default_rng([0, 3]), poses_, ["S9", "S11"], 1.0)
    b = random_clip_params(np.random.default_rng([0, 3]), poses_, ["S9", "S11"], 1.0)
    assert a.to_json() == b.to_json()  # the same seed and index draw the same clip
    assert HEIGHT_RANGE[0] <= a.height_fraction <= HEIGHT_RANGE[1]
    (video, gt), = generate(["S9"], clips=1, seconds=0.4, seed=5, out=tmp_path)
    with np.load(gt) as d:
        cam, kp2d = d["keypoints_3d_camera"].astype(np.float64), d["keypoints_2d"]
        w, h = d["frame_size"]
        focal, centre = float(d["focal"]), d["center"]
        assert str(d["subject"]) == "S9" and len(cam) == 10
        np.testing.assert_allclose(kp2d, focal * cam[..., :2] / cam[..., 2:] + centre, atol=1e-3)
        assert (kp2d[..., 0] > 0).all() and (kp2d[..., 0] < w).all() and (kp2d[..., 1] > 0).all() and (kp2d[..., 1] < h).all()
        np.testing.assert_allclose(d["keypoints_3d"], cam - cam[:, :1], atol=1e-5)
    from video3d.video import probe

    info = probe(video)
    assert (info.width, info.height) == (w, h)
    mtime = video.stat().st_mtime_ns
    generate(["S9"], clips=1, seconds=0.4, seed=5, out=tmp_path)  # the same clip again: kept, not rendered again
    assert video.stat().st_mtime_ns == mtime
