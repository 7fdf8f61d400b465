import numpy as np
import pytest

from video3d.metrics import mpjpe, mpjve, n_mpjpe, p_mpjpe, procrustes_align


@pytest.fixture
def pose():
    return np.random.default_rng(0).normal(size=(10, 17, 3))


def rotation(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def test_mpjpe_of_a_constant_offset_is_its_length(pose):
    assert mpjpe(pose + np.array([3.0, 4.0, 0.0]), pose) == pytest.approx(5.0)


def test_mpjpe_by_hand():
    target = np.zeros((1, 2, 3))
    predicted = np.array([[[1.0, 0, 0], [0, 0, 2.0]]])
    assert mpjpe(predicted, target) == pytest.approx(1.5)


def test_p_mpjpe_ignores_rotation_scale_translation(pose):
    r = rotation([1, 2, 3], 0.7)
    moved = 2.5 * pose @ r.T + np.array([1.0, -2.0, 0.5])
    assert p_mpjpe(moved, pose) == pytest.approx(0.0, abs=1e-9)
    assert mpjpe(moved, pose) > 1.0


def test_p_mpjpe_does_not_allow_reflections(pose):
    mirrored = pose * np.array([-1.0, 1.0, 1.0])
    assert p_mpjpe(mirrored, pose) > 0.1


def test_procrustes_is_the_best_similarity():
    rng = np.random.default_rng(3)
    target = rng.normal(size=(1, 17, 3))
    predicted = target + rng.normal(scale=0.1, size=target.shape)
    aligned = procrustes_align(predicted, target)
    best = mpjpe(aligned, target)
    for angle in (0.05, -0.05):
        worse = procrustes_align(predicted, target)[0] @ rotation([0, 0, 1], angle).T
        assert mpjpe(worse[None], target) >= best


def test_n_mpjpe_ignores_scale_only(pose):
    assert n_mpjpe(0.5 * pose, pose) == pytest.approx(0.0, abs=1e-12)
    assert n_mpjpe(pose + 1.0, pose) > 0.1


def test_n_mpjpe_by_hand():
    target = np.array([[[1.0, 0, 0], [-1.0, 0, 0]]])
    predicted = np.array([[[2.0, 0, 0], [-2.0, 1.0, 0]]])
    # best scale s = <t,p>/<p,p> = 4/9 -> errors |(8/9 - 1)| and |(-8/9+1, 4/9)|
    s = 4 / 9
    e = (abs(2 * s - 1) + np.hypot(-2 * s + 1, s)) / 2
    assert n_mpjpe(predicted, target) == pytest.approx(e)


def test_mpjve_zero_for_constant_offset_and_known_for_drift(pose):
    assert mpjve(pose + 1.0, pose) == pytest.approx(0.0)
    drift = pose + np.arange(len(pose))[:, None, None] * np.array([0.0, 0.0, 0.2])
    assert mpjve(drift, pose) == pytest.approx(0.2)


@pytest.mark.parametrize("fn", [mpjpe, p_mpjpe, n_mpjpe, mpjve])
def test_metrics_reject_mismatched_shapes(fn):
    with pytest.raises(ValueError):
        fn(np.zeros((2, 17, 3)), np.zeros((2, 16, 3)))


def test_foot_sliding_a_planted_foot_does_not_move_a_sliding_one_does():
    from video3d.metrics import foot_sliding

    T, fps = 50, 25.0
    world = np.zeros((T, 17, 3))
    world[:, :, 2] = 0.5  # every joint in the air ...
    world[:, 3, 2] = 0.02  # ... but the right ankle, planted at the origin
    world[:, 6, 2] = 0.30  # the left ankle swings, never down
    world[:, 6, 0] = np.arange(T) * 0.04
    assert foot_sliding(world, fps) == (0.0, 0.5)  # one of two feet down in every step, not moving
    world[:, 3, 1] = np.arange(T) * 0.01  # the planted foot slides 1 cm a frame
    speed, share = foot_sliding(world, fps)
    assert speed == pytest.approx(0.25) and share == 0.5  # 0.01 m x 25 fps
    world[10:20, 3] = np.nan  # a missing foot is left out, not counted as contact
    speed, share = foot_sliding(world, fps)
    assert speed == pytest.approx(0.25) and share == pytest.approx(38 / (38 + 49))
