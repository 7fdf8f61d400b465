import numpy as np
import pytest

from video3d.smoothing import one_euro, savgol, savgol_coefficients
from video3d.world import estimate_up, to_world, world_rotation

from .test_render import standing_pose


def tilt(poses, degrees):
    """Pitch the camera: rotate camera-space poses about the camera's x axis."""
    a = np.radians(degrees)
    r = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    return poses @ r.T


@pytest.mark.parametrize("degrees", [0, 15, -20, 35])
def test_up_is_recovered_whatever_the_camera_pitch(degrees):
    poses = tilt(np.stack([standing_pose()] * 5)[None], degrees)
    up = estimate_up(poses)
    expected = tilt(np.array([0.0, -1.0, 0.0]), degrees)
    np.testing.assert_allclose(up, expected / np.linalg.norm(expected), atol=0.05)


def test_world_rotation_is_proper_and_maps_up_to_z():
    up = np.array([0.1, -0.95, 0.2])
    up /= np.linalg.norm(up)
    R = world_rotation(up)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(R @ up, [0, 0, 1], atol=1e-9)


def walking(T=30):
    poses = np.stack([standing_pose()] * T)[None]  # (1, T, 17, 3)
    roots = np.zeros((1, T, 3))
    roots[0, :, 0] = np.linspace(-1, 1, T)  # walks across, 5 m away
    roots[0, :, 2] = 5.0
    return poses, roots


def test_people_stand_upright_on_the_floor():
    poses, roots = walking()
    w = to_world(tilt(poses, 20), tilt(roots, 20))
    head, ankles = w.poses[0, :, 10], w.poses[0, :, [3, 6]]
    assert (head[:, 2] > 1.4).all()
    assert np.percentile(np.minimum(ankles[0, :, 2], ankles[1, :, 2]), 5) == pytest.approx(0.0, abs=1e-5)


def test_trajectory_moves_people_and_can_be_switched_off():
    poses, roots = walking()
    moving = to_world(poses, roots, trajectory=True).poses[0, :, 0]
    still = to_world(poses, roots, trajectory=False).poses[0, :, 0]
    assert np.ptp(moving[:, 0]) == pytest.approx(2.0, abs=1e-4)
    assert np.ptp(still[:, 0]) < 1e-6


def test_two_people_keep_their_places():
    poses, roots = walking()
    poses = np.concatenate([poses, poses])
    roots = np.concatenate([roots, roots + np.array([2.0, 0.0, 0.0])])
    w = to_world(poses, roots)
    gap = w.poses[1, :, 0] - w.poses[0, :, 0]
    np.testing.assert_allclose(gap[:, 0], 2.0, atol=1e-4)


@pytest.mark.parametrize("rebase", ["frame", "none"])
def test_rebase_modes(rebase):
    poses, roots = walking()
    poses = poses.copy()
    poses[0, 5] += np.array([0, -0.3, 0])  # a jump: 30 cm up in frame 5
    w = to_world(poses, roots, rebase=rebase).poses[0]
    lowest = w[..., 2].min(-1)
    if rebase == "frame":
        np.testing.assert_allclose(lowest, 0, atol=1e-6)
    else:
        assert lowest[5] - lowest[4] == pytest.approx(0.3, abs=1e-5)


def test_unknown_rebase():
    with pytest.raises(ValueError, match="sequence, frame, none"):
        to_world(*walking(), rebase="floor")


# --- smoothing ------------------------------------------------------------------------------------
def test_savgol_keeps_polynomials_and_gaps():
    t = np.arange(40, dtype=float)
    x = np.stack([0.5 * t**2 - 3 * t, t], -1)
    x[20] = np.nan
    y = savgol(x, 7, 2)
    np.testing.assert_allclose(y[3:17], x[3:17], atol=1e-6)  # quadratics pass unchanged (inside a stretch)
    assert np.isnan(y[20]).all()
    np.testing.assert_allclose(savgol_coefficients(5, 2).sum(), 1.0)


def test_one_euro_reduces_jitter_and_follows_fast_motion():
    rng = np.random.default_rng(0)
    fps = 50.0
    t = np.arange(200) / fps
    clean = np.where(t < 2, 0.0, 1.0 * (t - 2))  # still, then moving at 1 m/s
    noisy = clean + rng.normal(0, 0.01, len(t))
    out = one_euro(noisy[:, None], fps, min_cutoff=1.0, beta=1.0)[:, 0]
    still = slice(20, 100)
    assert np.std(out[still] - clean[still]) < 0.5 * np.std(noisy[still] - clean[still])
    assert abs(out[-1] - clean[-1]) < 0.05  # little lag once moving


def test_one_euro_restarts_after_a_gap():
    x = np.array([0.0, 0.0, np.nan, 5.0, 5.0])[:, None]
    out = one_euro(x, 25.0)[:, 0]
    assert np.isnan(out[2]) and out[3] == 5.0


def test_the_world_skeleton_is_life_size_with_the_persons_proportions():
    from video3d.skeleton import bone_lengths
    from video3d.world import H36M_BONES, life_size

    small = H36M_BONES * 0.8
    small[2] *= 1.1  # a long right thigh: made equal to the left one
    out = life_size(small)
    assert out.sum() == pytest.approx(H36M_BONES.sum()) and out[2] == pytest.approx(out[5])
    assert out[12] / out[13] == pytest.approx(small[12] / small[13])  # proportions kept
    folded = H36M_BONES.copy()
    folded[[3, 6]] *= 0.57  # the shins of a lifter's crouching figure (seen on a real video): not a build
    out = life_size(folded)
    assert out.sum() == pytest.approx(H36M_BONES.sum())
    assert out[3] == pytest.approx(0.85 * H36M_BONES[3]) and out[6] == out[3]  # held at 15 % short
    assert np.all(np.abs(out[1:] / H36M_BONES[1:] - 1) <= 0.15 + 1e-6)  # every bone within the range
    rng = np.random.default_rng(0)
    poses = rng.normal(size=(1, 20, 17, 3)) * 0.3  # any shapes, 0.6 of life or so
    roots = np.tile([0.0, 0.0, 4.0], (1, 20, 1))
    world = to_world(poses, roots, rigid=True)
    measured = bone_lengths(world.poses[0])
    assert measured.sum() == pytest.approx(H36M_BONES.sum(), rel=1e-3)
    assert bone_lengths(to_world(poses, roots, rigid=False).poses[0]).sum() != pytest.approx(H36M_BONES.sum(), rel=0.1)


def test_human36m_bone_lengths_are_the_training_subjects(h36m_path):
    from video3d.data.h36m import TRAIN_SUBJECTS, load_sequences
    from video3d.skeleton import bone_lengths
    from video3d.world import H36M_BONES

    takes = load_sequences(h36m_path, TRAIN_SUBJECTS, cameras=["0"])
    measured = np.median([bone_lengths(t.positions_3d[::10]) for t in takes], axis=0)
    np.testing.assert_allclose(measured, H36M_BONES, atol=5e-4)


def test_ground_keeps_a_jump_and_grounds_a_crouch():
    from video3d.world import ground_heights

    fps = 25
    feet = np.zeros(100)
    feet[20:27] = 0.3 * np.sin(np.linspace(0, np.pi, 9)[1:-1])  # a 0.28 s jump: kept
    feet[50:80] = 0.15  # a 1.2 s crouch with the pelvis held: the feet float unless grounded
    feet[90:] = 0.01 * np.arange(10)  # drift within the tolerance, then a slope: followed
    ground = ground_heights(feet, fps)
    np.testing.assert_allclose(ground[20:27], 0.0, atol=1e-9)  # the floor stays under the jump
    np.testing.assert_allclose(ground[52:78], 0.15, atol=1e-9)  # the crouching feet on the floor
    np.testing.assert_allclose(ground[:20], feet[:20])
    assert np.abs(feet - ground)[90:].max() < 0.03


def test_ground_rebase_puts_the_lower_foot_on_the_floor_in_every_frame():
    poses, roots = walking()
    poses = poses.copy()
    poses[0, 10:40, :, 1] -= 0.2  # 30 frames (1.2 s at 25 fps) of the whole body 20 cm up: a constant pelvis
    w = to_world(poses, roots, rebase="ground").poses[0]
    feet = np.minimum(w[:, 3, 2], w[:, 6, 2])
    np.testing.assert_allclose(feet, 0.0, atol=1e-6)
    s = to_world(poses, roots, rebase="sequence").poses[0]
    assert np.minimum(s[:, 3, 2], s[:, 6, 2])[20] == pytest.approx(0.2, abs=1e-5)  # the old default: floating


def walker_world(T=100, fps=25.0, slide=0.01, seed=0):
    """World poses (T, 17, 3) of a walk: the left ankle planted for frames 0-49, the right for 50-99 (the other
    foot swinging 10 cm up and forward), the body moving 1.2 m/s; plus what a lifter gives: the planted foot
    sliding ``slide`` m per frame forward and the body jittering."""
    rng = np.random.default_rng(seed)
    pose = np.zeros((T, 17, 3))
    x = 1.2 * np.arange(T) / fps
    pose[:, :, 0] = x[:, None]
    pose[:, :, 2] = 0.9
    for foot, stance in ((6, slice(0, 50)), (3, slice(50, 100))):
        pose[:, foot, 2] = 0.1
        pose[stance, foot, 0] = pose[stance.start, 0, 0]  # planted where the body was when it landed
        pose[stance, foot, 2] = 0.0
    pose[:, [3, 6], 0] += slide * (np.arange(T) % 50)[:, None]
    pose[..., :2] += rng.normal(0, 0.02, (T, 1, 2))  # the trajectory's jitter moves everything
    return pose


def test_the_stance_foot_does_not_slide():
    from video3d.metrics import foot_sliding
    from video3d.world import lock_stance_feet

    pose = walker_world()
    before, share = foot_sliding(pose, 25.0)
    after, share_after = foot_sliding(lock_stance_feet(pose, 25.0), 25.0)
    assert before > 0.5 and after < 0.15 * before and share_after == share
    out = lock_stance_feet(pose, 25.0)
    np.testing.assert_array_equal(out[..., 2], pose[..., 2])  # heights (jumps, steps) are left alone
    np.testing.assert_allclose(out - out[:, :1], pose - pose[:, :1], atol=1e-12)  # so is the pose itself
    # without a planted foot nothing changes
    high = pose.copy()
    high[..., 2] += 0.2
    np.testing.assert_array_equal(lock_stance_feet(high, 25.0), high)


def test_the_lock_fades_back_to_the_trajectory():
    from video3d.world import lock_stance_feet

    pose = walker_world(slide=0.0)
    pose[60:, ..., 2] += 0.5  # both feet leave the floor at frame 60: the correction then fades with LOCK_FADE_S
    shift = lock_stance_feet(pose, 25.0, fade_s=1.0)[:, 0, :2] - pose[:, 0, :2]
    assert np.linalg.norm(shift[99]) < 0.25 * np.linalg.norm(shift[60])


def test_to_world_locks_the_feet_only_with_a_trajectory_on_the_ground():
    from video3d.metrics import foot_sliding
    from video3d.world import lock_stance_feet  # noqa: F401

    T = 60
    poses = np.stack([standing_pose()] * T)[None].astype(np.float64)
    poses[0, :, [3, 6], 0] += 0.01 * np.arange(T)[None, :]  # feet sliding sideways in camera x
    roots = np.zeros((1, T, 3))
    roots[..., 2] = 4.0
    slid = {}
    for trajectory in (True, False):
        for rebase in ("ground", "sequence"):
            w = to_world(poses.astype(np.float32), roots, trajectory=trajectory, rebase=rebase, rigid=False)
            slid[trajectory, rebase] = foot_sliding(w.poses[0], 25.0)[0]
    assert slid[True, "ground"] < 0.3 * slid[False, "ground"]  # a constant slide: the fade lets a little through
    assert slid[True, "sequence"] == pytest.approx(slid[False, "sequence"])
