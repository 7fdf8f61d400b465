import numpy as np
import pytest

from video3d.data.h36m_cameras import EXTRINSICS, INTRINSICS
from video3d.geometry import (fit_scale, normalize_screen_coordinates, pose_spread, project_to_2d, qrot,
                              rescale_about_root, solve_translation, world_to_camera)


# references for checking the library's functions: their inverses and the textbook rotation matrix
def camera_to_world(x: np.ndarray, orientation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """The inverse of world_to_camera."""
    return qrot(np.asarray(orientation), x) + np.asarray(translation, dtype=x.dtype)


def image_coordinates(x: np.ndarray, w: float, h: float) -> np.ndarray:
    """The inverse of normalize_screen_coordinates."""
    return (x + np.array([1.0, h / w], dtype=x.dtype)) * w / 2.0


def rotation_matrix_from_quaternion(q: np.ndarray) -> np.ndarray:
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def test_qrot_quarter_turn_about_z():
    q = np.array([np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)])  # 90 degrees about z
    np.testing.assert_allclose(qrot(q, np.array([1.0, 0, 0])), [0, 1, 0], atol=1e-12)


def test_quaternion_matches_rotation_matrix():
    q = np.array(EXTRINSICS["S1"][0]["orientation"])
    v = np.array([0.3, -1.2, 2.0])
    np.testing.assert_allclose(qrot(q, v), rotation_matrix_from_quaternion(q) @ v, atol=1e-9)


def test_world_camera_round_trip():
    ext = EXTRINSICS["S9"][2]
    x = np.random.default_rng(0).normal(size=(5, 17, 3))
    t = np.array(ext["translation"]) / 1000
    cam = world_to_camera(x, np.array(ext["orientation"]), t)
    np.testing.assert_allclose(camera_to_world(cam, np.array(ext["orientation"]), t), x, atol=1e-9)


def test_camera_centre_maps_to_origin():
    ext = EXTRINSICS["S1"][1]
    centre = np.array(ext["translation"]) / 1000
    np.testing.assert_allclose(world_to_camera(centre, np.array(ext["orientation"]), centre), 0, atol=1e-12)


@pytest.mark.parametrize("point,expected", [
    # no distortion: a pinhole. (x/z, y/z) = (0.1, -0.2) -> f * (0.1, -0.2) + c
    ((0.5, -1.0, 5.0), (1000 * 0.1 + 500, 1000 * -0.2 + 400)),
    ((0.0, 0.0, 3.0), (500, 400)),
])
def test_projection_without_distortion(point, expected):
    intr = dict(focal_length=(1000.0, 1000.0), center=(500.0, 400.0), radial_distortion=(0, 0, 0),
                tangential_distortion=(0, 0))
    np.testing.assert_allclose(project_to_2d(np.array(point), intr), expected, atol=1e-9)


def test_projection_radial_distortion_by_hand():
    intr = dict(focal_length=(1000.0, 1000.0), center=(0.0, 0.0), radial_distortion=(0.1, 0, 0),
                tangential_distortion=(0, 0))
    # xx = (0.2, 0), r2 = 0.04, radial = 1.004 -> u = 1000 * 0.2 * 1.004
    np.testing.assert_allclose(project_to_2d(np.array([0.4, 0.0, 2.0]), intr), [200.8, 0.0], atol=1e-9)


def test_h36m_projection_lands_in_frame():
    intr = INTRINSICS["54138969"]
    uv = project_to_2d(np.array([0.1, 0.2, 5.0]), intr)
    assert 0 < uv[0] < intr["res_w"] and 0 < uv[1] < intr["res_h"]


def test_screen_normalisation_round_trip_and_convention():
    x = np.array([[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]])
    n = normalize_screen_coordinates(x, 1000, 1002)
    np.testing.assert_allclose(n[0], [-1, -1.002])
    np.testing.assert_allclose(n[1], [1, 1.002])
    np.testing.assert_allclose(n[2], [0, 0], atol=1e-12)
    np.testing.assert_allclose(image_coordinates(n, 1000, 1002), x)


def test_solve_translation_recovers_a_known_position():
    rng = np.random.default_rng(1)
    pose = rng.normal(scale=0.3, size=(4, 17, 3))
    pose -= pose[:, :1]
    t_true = np.array([[0.5, -0.2, 4.0], [-1.0, 0.3, 6.0], [0.0, 0.0, 3.0], [2.0, 1.0, 9.0]])
    f, c = 800.0, (320.0, 240.0)
    cam = pose + t_true[:, None]
    uv = f * cam[..., :2] / cam[..., 2:] + np.array(c)
    np.testing.assert_allclose(solve_translation(uv, pose, f, c), t_true, atol=1e-4)


def test_solve_translation_marks_unsolvable_frames():
    uv = np.full((1, 17, 2), np.nan)
    assert np.isnan(solve_translation(uv, np.zeros((1, 17, 3)), 800.0, (0, 0))).all()


def test_pose_spread_is_the_rms_distance_from_the_pelvis():
    x = np.zeros((17, 2))
    x[1:] = [3.0, 4.0]  # every other joint 5 from the pelvis
    x += [10.0, -2.0]  # where the pose is does not matter
    assert pose_spread(x) == pytest.approx(np.sqrt(16 * 25 / 17))


@pytest.mark.parametrize("median", [0.05, 0.2, 0.5])  # smaller, the same, larger
def test_fit_scale_brings_the_median_size_to_the_target(median):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(31, 17, 2))
    x *= (median * rng.uniform(0.8, 1.25, 31) / pose_spread(x))[:, None, None]  # sizes around the median
    x *= median / np.median(pose_spread(x))  # the median exactly
    x[3, 5] = np.nan  # a frame with a missing joint does not count
    factor = fit_scale(x, 0.2)
    assert factor == pytest.approx(0.2 / np.median(pose_spread(np.delete(x, 3, axis=0))))
    assert np.nanmedian(pose_spread(np.delete(rescale_about_root(x, factor), 3, axis=0))) == pytest.approx(0.2)


def test_fit_scale_of_nothing_measurable_is_one():
    assert fit_scale(np.zeros((0, 17, 2)), 0.2) == 1.0
    assert fit_scale(np.full((5, 17, 2), np.nan), 0.2) == 1.0
    assert fit_scale(np.zeros((5, 17, 2)), 0.2) == 1.0  # all joints on the pelvis: size 0


def test_rescale_about_root_keeps_the_root():
    x = np.random.default_rng(1).normal(size=(4, 17, 2)).astype(np.float32)
    y = rescale_about_root(x, 2.5)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y[:, 0], x[:, 0])
    np.testing.assert_allclose(pose_spread(y), 2.5 * pose_spread(x), rtol=1e-5)
