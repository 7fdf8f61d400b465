import numpy as np
import pytest

from video3d.evaluation import ActionScore, EvaluationReport, Perturbation, sequence_errors


def test_sequence_errors_are_sums_over_frames_in_mm():
    target = np.zeros((4, 17, 3))
    predicted = target + np.array([0.003, 0.004, 0.0])  # 5 mm everywhere, no motion
    e = sequence_errors(predicted, target)
    assert e["frames"] == 4 and e["velocity_frames"] == 3
    assert e["mpjpe"] == pytest.approx(4 * 5.0)
    assert e["mpjve"] == pytest.approx(0.0)
    assert e["p_mpjpe"] == pytest.approx(0.0, abs=1e-6)  # a translation is aligned away


def test_average_is_the_unweighted_mean_of_actions():
    report = EvaluationReport("x", "w", ["S9"], True)
    report.actions["Walking"] = ActionScore(100, 40.0, 30.0, 38.0, 2.0)
    report.actions["Eating"] = ActionScore(10, 60.0, 50.0, 58.0, 4.0)
    assert report.average["mpjpe"] == pytest.approx(50.0)  # not the frame-weighted 41.8
    assert report.frames == 110


def test_report_dict_holds_plain_python_numbers():
    """It goes into checkpoints, which torch.load(weights_only=True) must read: no numpy scalars."""
    report = EvaluationReport("x", "w", ["S9"], True)
    report.actions["Walking"] = ActionScore(np.int64(100), np.float64(40.0), np.float64(30.0), 38.0, 2.0)
    d = report.to_dict()
    assert type(d["actions"]["Walking"]["mpjpe"]) is float and type(d["actions"]["Walking"]["frames"]) is int
    assert all(type(v) is float for v in d["average"].values()) and type(d["frames"]) is int


def test_perturbation_is_seeded_and_touches_what_it_says():
    kp = np.random.default_rng(0).uniform(0, 1000, size=(60, 17, 2)).astype(np.float32)
    synth = Perturbation(coco_synthesis=True)(kp, 3)
    changed = np.abs(synth - kp).max(axis=(0, 2)) > 0
    assert changed.tolist() == [j in (0, 7, 8) for j in range(17)]
    noisy = Perturbation(noise_px=5.0, drift_px=3.0)
    np.testing.assert_array_equal(noisy(kp, 1), noisy(kp, 1))
    assert not np.array_equal(noisy(kp, 1), noisy(kp, 2))
    assert np.std(noisy(kp, 1) - kp) == pytest.approx(np.hypot(5.0, 3.0), rel=0.2)
    assert not Perturbation().active


def test_lost_joints_are_filled_by_interpolation():
    t = np.arange(200, dtype=np.float32)
    kp = np.tile(t[:, None, None], (1, 17, 2))  # every coordinate moves linearly: interpolation is exact inside
    out = Perturbation(dropped_joints=0.5)(kp, 0)
    changed = np.abs(out - kp) > 1e-4
    assert changed.any()  # spans touching a chunk's edge are held, so they differ
    assert np.isfinite(out).all() and np.abs(out - kp).max() <= 25
