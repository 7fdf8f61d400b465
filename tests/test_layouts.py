import numpy as np
import pytest

from video3d.layouts import COCO17, H36M17, coco17_to_h36m17, get_layout, synthesize_coco_like_h36m


def coco_pose():
    kp = np.zeros((17, 2), np.float32)
    named = {"nose": (50, 10), "left_eye": (54, 6), "right_eye": (46, 6), "left_ear": (58, 8), "right_ear": (42, 8),
             "left_shoulder": (70, 40), "right_shoulder": (30, 40), "left_elbow": (75, 70), "right_elbow": (25, 70),
             "left_wrist": (78, 95), "right_wrist": (22, 95), "left_hip": (62, 100), "right_hip": (38, 100),
             "left_knee": (63, 140), "right_knee": (37, 140), "left_ankle": (64, 180), "right_ankle": (36, 180)}
    for name, xy in named.items():
        kp[COCO17.index(name)] = xy
    return kp


@pytest.mark.parametrize("h36m_joint,expected", [
    ("pelvis", (50, 100)),  # mean of the hips
    ("spine", (50, 70)),  # mean of shoulders and hips
    ("thorax", (50, 40 + (10 - 40) / 3)),  # shoulder midpoint + (nose - midpoint) / 3
    ("neck_nose", (50, 10)),
    ("head", (50, 2 * 6 - 10)),  # x: mean of eyes and ears; y: eyes + (eyes - nose)
    ("left_shoulder", (70, 40)), ("right_hip", (38, 100)), ("right_ankle", (36, 180)), ("left_wrist", (78, 95)),
])
def test_coco_to_h36m_table(h36m_joint, expected):
    out, conf = coco17_to_h36m17(coco_pose(), np.ones(17, np.float32))
    np.testing.assert_allclose(out[H36M17.index(h36m_joint)], expected, atol=1e-5)
    assert conf[H36M17.index(h36m_joint)] == pytest.approx(1.0)


def test_confidences_are_carried():
    conf = np.linspace(0.1, 0.9, 17).astype(np.float32)
    _, c = coco17_to_h36m17(coco_pose(), conf)
    assert c[H36M17.index("left_knee")] == pytest.approx(conf[COCO17.index("left_knee")])
    assert c[H36M17.index("pelvis")] == pytest.approx(conf[[11, 12]].mean())
    assert c[H36M17.index("thorax")] == pytest.approx(conf[[5, 6]].mean())
    assert c[H36M17.index("head")] == pytest.approx(conf[1:5].mean())


def test_missing_joints_propagate_as_nan_with_zero_confidence():
    kp = coco_pose()
    conf = np.ones(17, np.float32)
    kp[COCO17.index("left_hip")] = np.nan
    conf[COCO17.index("left_hip")] = 0
    out, c = coco17_to_h36m17(kp, conf)
    for joint in ("left_hip", "pelvis", "spine"):
        assert np.isnan(out[H36M17.index(joint)]).all() and c[H36M17.index(joint)] == 0
    assert np.isfinite(out[H36M17.index("thorax")]).all()


def test_head_from_one_eye_in_profile():
    kp = coco_pose()
    kp[[2, 4]] = np.nan  # right eye and ear hidden
    out, _ = coco17_to_h36m17(kp, np.ones(17, np.float32))
    assert np.isfinite(out[H36M17.index("head")]).all()


def test_conversion_batches_over_leading_axes():
    batch = np.stack([coco_pose()] * 6).reshape(2, 3, 17, 2)
    out, conf = coco17_to_h36m17(batch, np.ones((2, 3, 17), np.float32))
    assert out.shape == (2, 3, 17, 2) and conf.shape == (2, 3, 17)


@pytest.mark.parametrize("layout", [H36M17, COCO17])
def test_flip_index_swaps_pairs_and_is_an_involution(layout):
    perm = layout.flip_index
    for a, b in zip(layout.left, layout.right):
        assert perm[a] == b and perm[b] == a
    np.testing.assert_array_equal(perm[perm], np.arange(layout.num_joints))


def test_h36m_edges_follow_parents():
    assert len(H36M17.edges) == 16
    assert (H36M17.index("left_knee"), H36M17.index("left_hip")) in H36M17.edges


def test_unknown_layout_lists_known():
    with pytest.raises(ValueError, match="coco17"):
        get_layout("openpose25")


def test_training_synthesis_matches_the_conversion_rules():
    kp = np.random.default_rng(0).normal(size=(4, 17, 2)).astype(np.float32)
    out = synthesize_coco_like_h36m(kp)
    np.testing.assert_allclose(out[:, 0], (kp[:, 1] + kp[:, 4]) / 2, atol=1e-6)
    np.testing.assert_allclose(out[:, 8], (kp[:, 11] + kp[:, 14]) / 2 + (kp[:, 9] - (kp[:, 11] + kp[:, 14]) / 2) / 3,
                               atol=1e-6)
    np.testing.assert_array_equal(out[:, 1:7], kp[:, 1:7])
