import numpy as np
import pytest

from video3d.detector import Detection
from video3d.layouts import H36M17
from video3d.world import H36M_BONES
from video3d.tracks import TrackBuilder, fill_missing, guess_unseen, segments, select_persons, unseen_joints


def det(tid, x=100.0, h=200.0, conf=0.9):
    kp = np.tile(np.array([[x, 50.0]], np.float32), (17, 1))
    return Detection(tid, np.array([x - 20, 10, x + 20, 10 + h], np.float32), 0.9, kp, np.full(17, conf, np.float32))


def test_one_row_per_frame_and_gaps_are_nan():
    b = TrackBuilder()
    b.add([det(1)])
    b.add([])
    b.add([det(1), det(2, x=300)])
    seqs = b.sequences(30.0, (640, 480))
    assert [s.track_id for s, _ in seqs] == [1, 2]
    s1, boxes1 = seqs[0]
    assert s1.num_frames == 3
    np.testing.assert_array_equal(s1.valid, [True, False, True])
    assert np.isnan(boxes1[1]).all()
    s2, _ = seqs[1]
    np.testing.assert_array_equal(s2.valid, [False, False, True])


def test_low_confidence_keypoints_become_missing():
    b = TrackBuilder(min_confidence=0.5)
    b.add([det(1, conf=0.2)])
    seq, _ = b.sequences(30.0, (640, 480))[0]
    assert seq.missing.all() and (seq.confidence == 0).all()


def test_select_main_subject_and_all():
    b = TrackBuilder()
    for t in range(10):
        dets = [det(1, h=100), det(2, h=300)] + ([det(3, h=400)] if t < 2 else [])
        b.add(dets)
    tracks = b.sequences(30.0, (640, 480))
    assert [s.track_id for s, _ in select_persons(tracks, 1)] == [2]  # long and large beats short and larger
    assert [s.track_id for s, _ in select_persons(tracks, "all")] == [2, 1]  # track 3: under 5 frames
    assert [s.track_id for s, _ in select_persons(tracks, "all", min_frames=1)] == [2, 1, 3]
    with pytest.raises(ValueError):
        select_persons(tracks, 0)


@pytest.mark.parametrize("present,max_gap,expected", [
    ([1, 1, 0, 1, 1], 1, [(0, 5)]),
    ([1, 1, 0, 0, 1, 1], 1, [(0, 2), (4, 6)]),
    ([0, 0, 1, 1, 0], 3, [(2, 4)]),
    ([0, 0, 0], 5, []),
    ([1, 0, 0, 0, 0, 0, 1], 5, [(0, 7)]),
])
def test_segments_table(present, max_gap, expected):
    assert segments(np.array(present, bool), max_gap) == expected


def test_fill_missing_interpolates_holds_and_borrows_from_parent():
    x = np.zeros((5, 17, 2), np.float32)
    x[:, :, 0] = np.arange(5)[:, None]
    x[1:4, 5] = np.nan  # left knee: gap inside -> linear
    x[:2, 12] = np.nan  # left elbow: missing at the start -> held
    x[:, 13] = np.nan  # left wrist: never seen -> its parent (left elbow)
    out = fill_missing(x, H36M17.parents)
    np.testing.assert_allclose(out[:, 5, 0], np.arange(5))
    np.testing.assert_allclose(out[:, 12, 0], [2, 2, 2, 3, 4])
    np.testing.assert_allclose(out[:, 13], out[:, 12])
    assert np.isfinite(out).all()


def test_fill_missing_fails_without_a_seen_ancestor():
    x = np.full((3, 17, 2), np.nan, np.float32)
    with pytest.raises(ValueError):
        fill_missing(x, H36M17.parents)


def walker(tid, T, frames, x0=100.0, speed=2.0, h=200.0):
    """A track seen on `frames`, moving right at `speed` px per frame."""
    from video3d.sequence import PoseSequence

    kp = np.full((T, 17, 2), np.nan, np.float32)
    conf = np.zeros((T, 17), np.float32)
    boxes = np.full((T, 4), np.nan, np.float32)
    for t in frames:
        x = x0 + speed * t
        kp[t, :, 0] = x + np.linspace(-15, 15, 17)
        kp[t, :, 1] = np.linspace(20, 20 + h, 17)
        conf[t] = 0.9
        boxes[t] = [x - 20, 10, x + 20, 10 + h]
    return PoseSequence(kp, conf, 30.0, "coco17", track_id=tid), boxes


def test_stitch_joins_an_id_switch_after_a_short_gap():
    from video3d.tracks import stitch_tracks

    out = stitch_tracks([walker(1, 60, range(0, 30)), walker(7, 60, range(40, 60))], fps=30.0)
    assert len(out) == 1 and out[0][0].track_id == 1
    assert out[0][0].valid.sum() == 50


def test_stitch_joins_a_duplicate_track():
    from video3d.tracks import stitch_tracks

    dup = walker(9, 60, range(20, 60))
    out = stitch_tracks([walker(1, 60, range(0, 50)), dup], fps=30.0)
    assert len(out) == 1 and out[0][0].valid.sum() == 60


@pytest.mark.parametrize("second", [
    walker(2, 60, range(0, 60), x0=400),  # another person, at the same time, elsewhere
    walker(2, 60, range(35, 60), x0=500),  # a new person appearing far away
    walker(2, 60, range(55, 60), x0=100),  # back after too long a gap (over a second)
])
def test_stitch_keeps_different_people_apart(second):
    from video3d.tracks import stitch_tracks

    out = stitch_tracks([walker(1, 60, range(0, 20)), second], fps=30.0)
    assert len(out) == 2


# --- joints not seen for long: a person cut by the frame's edge (issue 28, item 4) -----------------------------
@pytest.mark.parametrize("missing,max_gap,expected", [
    ("..XX....", 2, "........"),  # a short gap: interpolated, seen
    ("..XXX...", 2, "..XXX..."),  # longer than max_gap: not seen
    ("XXX.....", 2, "XXX....."),  # at the start
    (".....XX", 2, "......."),  # a short run at the end is held
    ("XXXXXXX", 12, "XXXXXXX"),  # never seen
    ("..X....", 0, "..X...."),  # max_gap 0: every missing frame
])
def test_unseen_joints_table(missing, max_gap, expected):
    m = np.array([c == "X" for c in missing])[:, None]
    out = unseen_joints(np.repeat(m, 2, 1), max_gap)
    assert "".join("X" if v else "." for v in out[:, 0]) == expected and (out[:, 0] == out[:, 1]).all()


def test_guess_unseen_hangs_the_lost_legs_below_the_hips():
    kp = np.full((4, 17, 2), np.nan, np.float32)
    kp[:, 0] = [100, 200]  # pelvis
    kp[:, 8] = [100, 100]  # thorax: the torso 100 px up the image
    kp[:, 1], kp[:, 4] = [90, 200], [110, 200]  # hips
    kp[:, 11], kp[:, 14] = [120, 100], [80, 100]  # shoulders
    kp[2:, 8] = [200, 200]  # a torso lying on its side: the limbs hang along it
    kp[3, 8] = np.nan
    unseen = np.zeros((4, 17), bool)
    unseen[:, [2, 3, 5, 6, 12, 13]] = True
    out = guess_unseen(kp, unseen)
    thigh, shin, upper, fore = 100 * H36M_BONES[[2, 3, 12, 13]] / (H36M_BONES[7] + H36M_BONES[8])  # px: 92, 91, 57, 51
    np.testing.assert_allclose(out[0, 2], [90, 200 + thigh], atol=1e-3)  # knee: a thigh straight down
    np.testing.assert_allclose(out[0, 3], [90, 200 + thigh + shin], atol=1e-3)
    np.testing.assert_allclose(out[0, 13], [120, 100 + upper + fore], atol=1e-3)  # the arm hangs from the shoulder
    assert np.isnan(out[0, [15, 16, 9, 10]]).all()  # not unseen: left for fill_missing
    np.testing.assert_allclose(out[2, 2], [90 - thigh, 200], atol=1e-3)
    np.testing.assert_allclose(out[3, 2], out[0, 2], atol=1e-3)  # no torso in this frame: the track's median
    np.testing.assert_array_equal(out[:, [0, 1, 4, 8, 11, 14]], kp[:, [0, 1, 4, 8, 11, 14]])  # the seen unchanged
