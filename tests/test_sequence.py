import numpy as np
import pytest

from video3d.sequence import PoseSequence


def ok(T=4, J=17, C=2):
    return np.zeros((T, J, C), np.float32), np.ones((T, J), np.float32)


def test_valid_sequence_and_properties():
    kp, conf = ok()
    kp[1] = np.nan
    conf[1] = 0
    seq = PoseSequence(kp, conf, 30.0, "coco17", track_id=3, frame_size=(640, 480))
    assert seq.num_frames == 4 and seq.num_joints == 17 and seq.dims == 2
    np.testing.assert_array_equal(seq.valid, [True, False, True, True])
    assert seq.keypoints.dtype == np.float32


def _nan_with_confidence():
    kp, conf = ok()
    kp[0, 0] = np.nan
    return kp, conf


def _half_nan():
    kp, conf = ok()
    kp[0, 0, 0] = np.nan
    conf[0, 0] = 0
    return kp, conf


@pytest.mark.parametrize("case,kwargs,match", [
    ("wrong joints", dict(keypoints=np.zeros((4, 16, 2)), confidence=np.ones((4, 16))), "layout coco17 has 17"),
    ("wrong dims", dict(keypoints=np.zeros((4, 17, 4)), confidence=np.ones((4, 17))), r"\(T, J, 2 or 3\)"),
    ("confidence shape", dict(keypoints=np.zeros((4, 17, 2)), confidence=np.ones((3, 17))), "confidence must be"),
    ("confidence range", dict(keypoints=np.zeros((4, 17, 2)), confidence=np.full((4, 17), 1.5)), r"\[0, 1\]"),
    ("NaN with confidence", dict(zip(("keypoints", "confidence"), _nan_with_confidence())), "confidence 0"),
    ("half NaN joint", dict(zip(("keypoints", "confidence"), _half_nan())), "fully NaN"),
    ("inf", dict(keypoints=np.full((4, 17, 2), np.inf), confidence=np.ones((4, 17))), "inf"),
])
def test_validation_rejects(case, kwargs, match):
    with pytest.raises(ValueError, match=match):
        PoseSequence(fps=30.0, layout="coco17", **kwargs)


@pytest.mark.parametrize("fps", [0.0, -1.0, float("nan")])
def test_fps_must_be_positive(fps):
    kp, conf = ok()
    with pytest.raises(ValueError, match="fps"):
        PoseSequence(kp, conf, fps, "coco17")


def test_unknown_layout():
    kp, conf = ok()
    with pytest.raises(ValueError, match="unknown joint layout"):
        PoseSequence(kp, conf, 30.0, "smpl24")


def test_empty_is_all_missing():
    seq = PoseSequence.empty(5, "h36m17", 3, 50.0)
    assert not seq.valid.any() and seq.missing.all() and (seq.confidence == 0).all()
