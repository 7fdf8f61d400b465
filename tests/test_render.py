import numpy as np

from video3d.render import BACKGROUND, Scene3D, SideBySideRenderer
from video3d.world import to_world


def standing_pose():
    # camera axes: y down. A person 1.7 m tall, root-relative.
    pose = np.zeros((17, 3), np.float32)
    pose[[1, 4], 0] = [-0.13, 0.13]
    pose[[2, 5], 1] = 0.45
    pose[[3, 6], 1] = 0.9
    pose[[2, 5, 3, 6], 0] = [-0.13, 0.13, -0.13, 0.13]
    pose[7, 1], pose[8, 1], pose[9, 1], pose[10, 1] = -0.24, -0.5, -0.6, -0.72
    pose[[11, 14], 0] = [0.15, -0.15]
    pose[[11, 14], 1] = -0.48
    pose[[12, 15], :2] = [[0.17, -0.2], [-0.17, -0.2]]
    pose[[13, 16], :2] = [[0.18, 0.05], [-0.18, 0.05]]
    return pose


def scene_of(poses_cam, ids):
    """Scene3D of camera-space root-relative poses (P, T, 17, 3), each person standing where they are."""
    roots = np.zeros(poses_cam.shape[:2] + (3,))
    roots[..., 2] = 4.0
    return Scene3D(to_world(poses_cam, roots).poses, ids)


def test_scene_floor_is_at_the_feet():
    scene = scene_of(np.stack([standing_pose()] * 3)[None], [7])
    assert abs(scene.floor) < 1e-6
    assert np.nanmin(scene.poses[..., [3, 6], 2]) == 0.0


def test_side_by_side_size_and_content():
    T = 3
    kp2d = np.full((1, T, 17, 2), np.nan, np.float32)
    kp2d[0, :, :, 0] = np.linspace(100, 200, 17)
    kp2d[0, :, :, 1] = np.linspace(50, 400, 17)
    scene = scene_of(np.stack([standing_pose()] * T)[None], [1])
    r = SideBySideRenderer((640, 480), kp2d, "coco17", scene)
    frame = np.full((480, 640, 3), 40, np.uint8)
    out = r.render(frame, 1)
    assert out.shape == (480, 640 + 480, 3) and r.output_size == (1120, 480)
    assert (out[:, :640] != 40).any()  # skeleton drawn on the frame
    right = out[:, 640:]
    assert (np.abs(right.astype(int) - BACKGROUND).sum(-1) > 200).sum() > 200  # a skeleton, not just the grid
    np.testing.assert_array_equal(frame, 40)  # the decoded frame itself is not modified


def test_invalid_frames_draw_no_skeleton():
    poses = np.stack([standing_pose()] * 2)[None].copy()
    poses[0, 1] = np.nan
    scene = scene_of(poses, [1])
    r = SideBySideRenderer((320, 240), np.full((1, 2, 17, 2), np.nan, np.float32), "coco17", scene)
    np.testing.assert_array_equal(r.render_3d(1), r._draw_grid(1))
    assert not np.array_equal(r.render_3d(0), r._draw_grid(0))


def test_view_target_projects_to_panel_centre():
    scene = scene_of(standing_pose()[None, None], [1])
    r = SideBySideRenderer((320, 240), np.zeros((1, 1, 17, 2)), "coco17", scene)
    uv, _ = r.project(r.targets[0][None], 0)
    np.testing.assert_allclose(uv[0], [120, 120], atol=1e-3)


def test_the_camera_follows_a_walker_and_the_floor_moves():
    T = 50
    poses = np.stack([standing_pose()] * T)[None]
    roots = np.zeros((1, T, 3))
    roots[0, :, 0] = np.linspace(-3, 3, T)  # 6 m across the room
    roots[0, :, 2] = 5.0
    scene = Scene3D(to_world(poses, roots, trajectory=True).poses, [1])
    r = SideBySideRenderer((320, 240), np.full((1, T, 17, 2), np.nan), "coco17", scene, fps=25.0)
    for t in (0, T // 2, T - 1):
        uv, _ = r.project(scene.poses[0, t, 0][None], t)
        assert abs(uv[0, 0] - 120) < 40  # the pelvis stays near the middle of the panel
    assert not np.array_equal(r._draw_grid(0), r._draw_grid(T - 1))  # the floor passes by


def test_the_3d_panel_reads_like_the_video():
    """Left and right, near and far, as in the video: the default view stands on the camera's side (issue 28)."""
    from video3d.layouts import H36M17

    pose = standing_pose()  # facing the camera: the person's left at +x, on the image's right
    poses = np.stack([pose, pose])[:, None]  # (2, 1, 17, 3)
    roots = np.array([[[-0.6, 0.0, 3.0]], [[0.9, 0.0, 6.0]]])  # person 0: left in the image and near; 1: right, far
    scene = Scene3D(to_world(poses, roots).poses, [1, 2])
    left, right = H36M17.index("left_wrist"), H36M17.index("right_wrist")
    r = SideBySideRenderer((640, 480), np.full((2, 1, 17, 2), np.nan), "h36m17", scene)
    uv, depth = r.project(scene.poses[:, 0], 0)  # (2, 17, 2), (2, 17)
    assert (uv[:, left, 0] > uv[:, right, 0]).all()  # each person's left hand on the right, as in the image
    assert uv[0, 0, 0] < uv[1, 0, 0] and depth[0, 0] < depth[1, 0]  # person 0 left of person 1, and nearer
    assert r.view_caption().startswith("view from the camera, 30 deg right, 15 deg up; grid")
    behind = SideBySideRenderer((640, 480), np.full((2, 1, 17, 2), np.nan), "h36m17", scene, azimuth=90.0)
    uv, depth = behind.project(scene.poses[:, 0], 0)
    assert (uv[:, left, 0] < uv[:, right, 0]).all() and depth[0, 0] > depth[1, 0]  # from behind: mirrored


def test_each_person_has_their_own_colours_in_both_panels():
    from video3d.render import palette

    assert len({palette(p)[0] for p in range(4)}) == 4 and palette(1)[0] != palette(1)[1]  # right != left
    pose = standing_pose()
    poses = np.stack([pose, pose])[:, None]
    scene = Scene3D(to_world(poses, np.array([[[-0.8, 0.0, 4.0]], [[0.8, 0.0, 4.0]]])).poses, [3, 8])
    kp = np.stack([pose[None, :, :2] * 200 + [100, 240], pose[None, :, :2] * 200 + [540, 240]]).astype(np.float32)
    r = SideBySideRenderer((640, 480), kp, "h36m17", scene)
    frame = np.zeros((480, 640, 3), np.uint8)
    for img, halves in ((r.draw_2d(frame, 0), (slice(0, 320), slice(320, 640))),
                        (r.render_3d(0), (slice(0, 240), slice(240, 480)))):
        for p, cols in enumerate(halves):
            part = img[:360, cols].reshape(-1, 3)  # above the legend
            for other in (p, 1 - p):
                found = (part == palette(other)[0]).all(-1).any()
                assert found == (other == p), (p, other)  # a person's right side in their colour, only there
