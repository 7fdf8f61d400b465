"""video3d.repair: left/right labels made consistent over time (short detector flips undone, nothing else)."""

import numpy as np
import pytest

from video3d.layouts import COCO17
from video3d.repair import GROUPS, facing_order, fix_left_right, swap_pairs

from .conftest import SAMPLE_GT

COCO_MIRROR = list(COCO17.flip_index)
KINDS = {"body": (True, True, True), "legs": (False, True, False), "arms": (False, False, True)}


def side_walk(T=120, fps=25.0, cycle=1.1, swing=25.0, torso=100.0, noise=0.0, seed=0, phase0=np.pi / 2):
    """COCO-17 walk seen from the side: hips and shoulders almost coincide, legs and arms swing in antiphase
    (sinusoids), so the knees and ankles cross twice a cycle."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / fps
    phase = 2 * np.pi * t / cycle + phase0  # pi / 2: the legs apart in the first frame
    x0 = 200 + 1.5 * torso * t
    kp = np.zeros((T, 17, 2))
    hip_y, shoulder_y = 300.0, 300.0 - torso
    for joints, sign, dx in (((5, 7, 9, 11, 13, 15), 1, -4), ((6, 8, 10, 12, 14, 16), -1, 4)):
        theta = sign * np.radians(swing) * np.sin(phase)
        hip = np.stack([x0 + dx, np.full(T, hip_y)], -1)
        knee = hip + 0.9 * torso * np.stack([np.sin(theta), np.cos(theta)], -1)
        shin = theta - np.radians(15) * (1 + np.sin(sign * phase + 0.5))
        ankle = knee + 0.9 * torso * np.stack([np.sin(shin), np.cos(shin)], -1)
        shoulder = np.stack([x0 + dx, np.full(T, shoulder_y)], -1)
        arm = -0.8 * theta
        elbow = shoulder + 0.6 * torso * np.stack([np.sin(arm), np.cos(arm)], -1)
        wrist = elbow + 0.55 * torso * np.stack([np.sin(arm + 0.3), np.cos(arm + 0.3)], -1)
        for j, p in zip(joints, (shoulder, elbow, wrist, hip, knee, ankle)):
            kp[:, j] = p
    head = np.stack([x0 + 0.25 * torso, np.full(T, shoulder_y - 0.5 * torso)], -1)
    for j, off in enumerate([(0.1, 0), (0.05, -0.05), (0.05, -0.04), (-0.15, 0), (-0.14, 0.01)]):
        kp[:, j] = head + np.array(off) * torso
    kp += rng.normal(0, noise, kp.shape)
    return kp.astype(np.float32), np.full((T, 17), 0.9, np.float32)


def front_walk(T=120, fps=25.0, noise=1.0, seed=1):
    """COCO-17 person facing the camera (so their left side on the image's right), walking on the spot, arms
    swinging, drifting sideways."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / fps
    s = np.sin(2 * np.pi * t / 1.1)
    base = np.array([[0, -150], [-8, -160], [8, -160], [-18, -155], [18, -155], [-40, -100], [40, -100],
                     [-48, -50], [48, -50], [-50, 0], [50, 0], [-25, 0], [25, 0], [-27, 90], [27, 90],
                     [-28, 180], [28, 180]], float)
    base[:, 0] *= -1  # facing the camera: the left joints at +x
    kp = np.repeat(base[None], T, 0)
    kp[:, [13, 15], 1] -= 15 * np.clip(s, 0, None)[:, None] * np.array([1, 2])  # left knee and ankle lift
    kp[:, [14, 16], 1] -= 15 * np.clip(-s, 0, None)[:, None] * np.array([1, 2])
    kp[:, [7, 9], 1] += 10 * s[:, None] * np.array([1, 2])
    kp[:, [8, 10], 1] -= 10 * s[:, None] * np.array([1, 2])
    kp[..., 0] += 320 + 40 * np.sin(t)[:, None]
    kp[..., 1] += 240
    kp += rng.normal(0, noise, kp.shape)
    return kp.astype(np.float32), np.full((T, 17), 0.9, np.float32)


def faceless(kp, conf, frames=slice(None)):
    """The detector does not see the face (nose, eyes) in ``frames``: from behind, or as YOLO sometimes has a
    person who faces the camera."""
    kp, conf = kp.copy(), conf.copy()
    kp[frames, :3], conf[frames, :3] = np.nan, 0.0
    return kp, conf


def mannequin():
    """The sample's true 2D (H36M-17, a walk at 25 fps)."""
    kp = np.load(SAMPLE_GT)["keypoints_2d"].astype(np.float32)
    return kp, np.ones(kp.shape[:2], np.float32)


TRACKS = {"front coco17": (front_walk, "coco17"), "side coco17": (side_walk, "coco17"),
          "mannequin h36m17": (mannequin, "h36m17")}


def flip(kp, conf, layout, frames, kind):
    """The detector's mistake: the left/right labels of the kind's groups exchanged in ``frames``."""
    kp, conf = kp.copy(), conf.copy()
    pairs = swap_pairs(layout)
    for group, on in zip(GROUPS, KINDS[kind]):
        for left, right in pairs[group] if on else ():
            kp[frames, left], kp[frames, right] = kp[frames, right].copy(), kp[frames, left].copy()
            conf[frames, left], conf[frames, right] = conf[frames, right].copy(), conf[frames, left].copy()
    return kp, conf


def apart(kp, layout, kind, start, length, min_gap=0.25):
    """The first start from ``start`` on at which the flip's first and last frames show the kind's left and right
    joints apart (seen from the side, limbs cross: a flip while they coincide is invisible, and undoing it is a
    guess). In torso lengths (the mannequin's 62 px, the synthetic walkers' ~100 px)."""
    pairs = [p for g, on in zip(GROUPS, KINDS[kind]) if on and g != "body" for p in swap_pairs(layout)[g]]
    pairs = pairs or swap_pairs(layout)["body"]
    left, right = np.array(pairs).T
    torso = 62.0 if layout == "h36m17" else 100.0
    sep = np.linalg.norm(kp[:, left] - kp[:, right], axis=-1).mean(1) / torso
    if start == 0:
        return 0 if sep[length - 1] > min_gap else pytest.fail("the track's first frames show no separation")
    for s in range(start, len(kp) - length - 1):
        if min(sep[s - 1], sep[s], sep[s + length - 1], sep[s + length]) > min_gap:
            return s
    pytest.fail("no place to put the flip")


def test_groups_come_from_the_layouts_flip_tables():
    coco, h36m = swap_pairs("coco17"), swap_pairs("h36m17")
    assert coco == {"body": [(1, 2), (3, 4), (5, 6), (11, 12)], "legs": [(13, 14), (15, 16)],
                    "arms": [(7, 8), (9, 10)]}
    assert h36m == {"body": [(4, 1), (11, 14)], "legs": [(5, 2), (6, 3)], "arms": [(12, 15), (13, 16)]}


@pytest.mark.parametrize("track", TRACKS)
def test_a_clean_track_is_unchanged_exactly(track):
    make, layout = TRACKS[track]
    kp, conf = make()
    out, out_conf, swapped = fix_left_right(kp, conf, layout)
    np.testing.assert_array_equal(out, kp)
    np.testing.assert_array_equal(out_conf, conf)
    assert swapped.shape == (len(kp), 3) and not swapped.any()


@pytest.mark.parametrize("track", TRACKS)
@pytest.mark.parametrize("kind,start,length", [
    ("body", 40, 3),  # a whole-body flip for 3 frames
    ("body", 50, 1),
    ("body", 0, 2),  # at the start of the track: one jump only
    ("legs", 60, 5),  # knees and ankles only
    ("arms", 30, 4),  # elbows and wrists only
    ("arms", 70, 8),
])
def test_a_short_flip_is_restored_exactly(track, kind, start, length):
    make, layout = TRACKS[track]
    kp, conf = make()
    start = apart(kp, layout, kind, start, length)
    frames = slice(start, start + length)
    bad, bad_conf = flip(kp, conf, layout, frames, kind)
    out, out_conf, swapped = fix_left_right(bad, bad_conf, layout)
    np.testing.assert_array_equal(out, kp)
    np.testing.assert_array_equal(out_conf, conf)
    expected = np.zeros((len(kp), 3), bool)
    expected[frames] = KINDS[kind]
    np.testing.assert_array_equal(swapped, expected)


@pytest.mark.parametrize("track", TRACKS)
def test_labels_swapped_in_every_frame_are_left_as_the_detector_gave_them(track):
    make, layout = TRACKS[track]
    kp, conf = make()
    if layout == "coco17":
        kp, conf = faceless(kp, conf)  # with the face seen, the labels must face the camera (below)
    bad, bad_conf = flip(kp, conf, layout, slice(None), "body")
    out, out_conf, swapped = fix_left_right(bad, bad_conf, layout)
    np.testing.assert_array_equal(out, bad)
    assert not swapped.any()


def test_a_long_consistent_stretch_is_kept():
    """Only short flips are undone: half a walk labelled the other way is the detector's call (when the face
    does not tell which way the person faces; without it, a whole-body relabelling costs a quarter as much,
    FACELESS, so the stretch kept is longer)."""
    kp, conf = faceless(*front_walk(T=800))
    for kind, length in (("legs", 100), ("arms", 100), ("body", 300)):  # 4 s and 12 s at 25 fps
        bad, bad_conf = flip(kp, conf, "coco17", slice(200, 200 + length), kind)
        assert not fix_left_right(bad, bad_conf, "coco17")[2].any(), kind
    bad, bad_conf = flip(kp, conf, "coco17", slice(200, 300), "body")  # 4 s of the body alone is undone
    assert fix_left_right(bad, bad_conf, "coco17")[2][200:300, 0].all()


@pytest.mark.parametrize("fps,cycle,swing", [
    (25, 1.1, 25), (30, 1.1, 25), (50, 1.1, 25), (12, 1.1, 25),  # walking
    (25, 0.7, 40), (20, 0.7, 40),  # running: the ankles move a third of their swing per frame
    (30, 0.55, 45),  # sprinting
])
@pytest.mark.parametrize("noise,phase", [(0.0, np.pi / 2), (3.0, 0.0), (3.0, 2.0)])
def test_legs_crossing_in_a_side_walk_are_not_swapped(fps, cycle, swing, noise, phase):
    kp, conf = side_walk(T=200, fps=fps, cycle=cycle, swing=swing, noise=noise, phase0=phase, seed=int(10 * phase))
    legs = np.array([13, 14, 15, 16])
    gap = kp[:, legs[[0, 2]], 0] - kp[:, legs[[1, 3]], 0]
    assert (np.diff(np.sign(gap), axis=0) != 0).sum() >= 6  # the premise: knees and ankles cross, again and again
    out, _, swapped = fix_left_right(kp, conf, "coco17")
    assert not swapped.any()
    np.testing.assert_array_equal(out, kp)


def test_a_stretch_without_the_face_is_relabelled_to_agree_with_the_face():
    """YOLO on a rendered clip (S11 Discussion, seen from the front): no face and the whole body labelled as seen
    from behind for 44 frames, then the face and the body relabelled in one frame. The face tells which is right,
    even where the stretch without it is the longer one."""
    kp, conf = front_walk(T=100)
    bad, bad_conf = faceless(*flip(kp, conf, "coco17", slice(0, 60), "body"), slice(0, 60))
    out, _, swapped = fix_left_right(bad, bad_conf, "coco17")
    np.testing.assert_array_equal(out[:, 3:], kp[:, 3:])
    assert swapped[:60, 0].all() and not swapped[60:].any()
    # the face unseen everywhere: nothing tells which labelling is right, and the longer one is kept
    bad, bad_conf = faceless(bad, bad_conf)
    swapped = fix_left_right(bad, bad_conf, "coco17")[2]
    assert not swapped[:60].any() and swapped[60:, 0].all()


@pytest.mark.parametrize("eyes,relabelled", [((0.9, 0.9), True), ((0.6, 0.5), True), ((0.9, 0.0), False)])
def test_a_face_seen_with_the_body_labelled_from_behind(eyes, relabelled):
    """A face seen (nose and both eyes) means the person faces the camera, their left on the image's right; the
    nose and one eye are also seen from three-quarters behind, which tells nothing."""
    kp, conf = front_walk(T=100)
    conf[:, 1:3] = eyes
    bad, bad_conf = flip(kp, conf, "coco17", slice(None), "body")
    out, _, swapped = fix_left_right(bad, bad_conf, "coco17")
    assert swapped[:, 0].all() == relabelled and swapped[:, 0].any() == relabelled
    np.testing.assert_array_equal(out, kp if relabelled else bad)
    # and the face leaves a track labelled as facing the camera alone
    assert not fix_left_right(kp, conf, "coco17")[2].any()


def test_facing_order_signs():
    kp, _ = front_walk(T=3, noise=0.0)
    order = facing_order(kp, "coco17", size=100.0)
    np.testing.assert_allclose(order, 0.8 * 0.5 + 0.5 * 0.5, atol=1e-6)  # shoulders 80 px apart, hips 50
    np.testing.assert_allclose(facing_order(kp[:, COCO_MIRROR], "coco17", 100.0), -order, atol=1e-6)
    kp[:, 5:7] = np.nan
    np.testing.assert_allclose(facing_order(kp, "coco17", 100.0), 0.5, atol=1e-6)  # the hips alone
    kp[:, 11:13] = np.nan
    np.testing.assert_array_equal(facing_order(kp, "coco17", 100.0), 0.0)


def test_missing_joints_and_empty_frames():
    kp, conf = front_walk(T=100)
    rng = np.random.default_rng(3)
    gone = rng.random(kp.shape[:2]) < 0.2
    gone[55] = True  # a frame with no joints at all
    kp[gone], conf[gone] = np.nan, 0.0
    bad, bad_conf = flip(kp, conf, "coco17", slice(50, 54), "body")
    bad2, bad_conf2 = flip(bad, bad_conf, "coco17", slice(56, 59), "legs")  # right after the empty frame
    out, out_conf, swapped = fix_left_right(bad2, bad_conf2, "coco17")
    np.testing.assert_array_equal(out, kp)  # NaN where missing, in place
    np.testing.assert_array_equal(out_conf, conf)
    assert not swapped[55].any() and swapped[50:54].all() and swapped[56:59, 1].all()
    assert swapped.any(1).sum() == 7


@pytest.mark.parametrize("frames", [0, 1, 2])
def test_tracks_too_short_or_empty(frames):
    kp = np.full((frames, 17, 2), np.nan, np.float32)
    conf = np.zeros((frames, 17), np.float32)
    if frames == 2:
        kp[1] = front_walk(T=1)[0][0]
        conf[1] = 0.9
    out, out_conf, swapped = fix_left_right(kp, conf, "coco17")
    np.testing.assert_array_equal(out, kp)
    assert swapped.shape == (frames, 3) and not swapped.any()


def test_a_long_gap_starts_the_chain_afresh():
    """After a gap longer than max_gap the person may have turned: the labels there are the detector's."""
    kp, conf = faceless(*front_walk(T=120))
    kp[60:80], conf[60:80] = np.nan, 0.0
    bad, bad_conf = flip(kp, conf, "coco17", slice(80, None), "body")  # labelled the other way after the gap
    assert not fix_left_right(bad, bad_conf, "coco17", max_gap=12)[2].any()
    bad, bad_conf = flip(kp, conf, "coco17", slice(80, 84), "body")  # a short flip just after it is still undone
    out = fix_left_right(bad, bad_conf, "coco17", max_gap=12)[0]
    np.testing.assert_array_equal(out, kp)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError):
        fix_left_right(np.zeros((5, 17, 2)), np.zeros((5, 16)), "coco17")
    with pytest.raises(ValueError):
        fix_left_right(np.zeros((5, 16, 2)), np.zeros((5, 16)), "coco17")


# --- in the pipeline -------------------------------------------------------------------------------------------
@pytest.fixture
def flipped_walk(tmp_path):
    """The sample's true 2D with a 3-frame whole-body flip, as a keypoints npz; and the clean 2D."""
    kp, conf = mannequin()
    bad, _ = flip(kp, conf, "h36m17", slice(80, 83), "body")
    path = tmp_path / "flipped_2d.npz"
    np.savez(path, keypoints_2d=bad[None], layout_2d="h36m17", frame_size=[640, 480], fps=25.0)
    return path, kp


@pytest.mark.parametrize("flag,fixed", [(None, True), ("--fix-swaps", True), ("--no-fix-swaps", False)])
def test_the_cli_option_reaches_the_lifter_input(flipped_walk, flag, fixed, tmp_path, random_checkpoint,
                                                 monkeypatch):
    from typer.testing import CliRunner

    import video3d.pipeline as pipeline
    from video3d.cli import app

    path, clean = flipped_walk
    seen = []
    real = pipeline.lifter_input

    def spy(seq, start, stop, unseen=None):
        x = real(seq, start, stop, unseen)
        seen.append((start, x))
        return x

    monkeypatch.setattr(pipeline, "lifter_input", spy)
    args = ["lift", str(path), "--weights", str(random_checkpoint), "--smooth", "none", "-o", str(tmp_path / "o.npz")]
    r = CliRunner().invoke(app, args + ([flag] if flag else []))
    assert r.exit_code == 0, r.stderr
    (start, x), = seen
    lifted = x[80 - start:83 - start]
    assert np.array_equal(lifted, clean[80:83]) == fixed  # the flip undone, or lifted as the detector gave it
    assert np.array_equal(x[:80 - start], clean[:80]) and np.array_equal(x[83 - start:], clean[83:])
    out = np.load(tmp_path / "o.npz")
    assert out["swaps_fixed"].tolist() == [3 if fixed else 0]
    marked = out["labels_swapped"][0]  # (T, 3): the whole body's labels (every group) in frames 80-82, no others
    assert marked[80:83].all() == fixed and marked.any(1).sum() == (3 if fixed else 0)
    from video3d.results import load_npz

    drawn = load_npz(tmp_path / "o.npz").keypoints_2d(as_lifted=True)[0, ..., :2]  # what the 2D panel draws
    assert np.array_equal(drawn[80:83], clean[80:83]) == fixed and np.array_equal(drawn[:80], clean[:80])
    assert ("left/right labels exchanged in 3 frames" in r.stderr) == fixed


@pytest.mark.parametrize("fix_swaps", [True, False])
def test_reconstruct_and_batch_forward_fix_swaps(flipped_walk, fix_swaps, tmp_path, random_checkpoint):
    from video3d.options import ReconstructOptions
    from video3d.lifters import create_lifter
    from video3d.pipeline import reconstruct

    from .conftest import SAMPLE

    assert "fix_swaps" in ReconstructOptions.names()  # batch passes reconstruct's options on (and fingerprints them)
    model = create_lifter("gastnet", weights=random_checkpoint, device="cpu")
    out = reconstruct(SAMPLE, output_dir=tmp_path, lifter=model, keypoints=flipped_walk[0], write_video=False,
                      smooth="none", fix_swaps=fix_swaps)
    assert out.result.swaps_fixed.tolist() == [3 if fix_swaps else 0]
    assert np.load(out.npz)["swaps_fixed"].tolist() == [3 if fix_swaps else 0]


def test_exchange_labels_redoes_what_the_repair_did():
    """The renderer draws the 2D as lifted from ``labels_swapped`` alone: the same exchange as fix_left_right's."""
    from video3d.repair import exchange_labels

    kp, conf = mannequin()
    bad, bad_conf = flip(kp, conf, "h36m17", slice(30, 34), "body")
    bad, bad_conf = flip(bad, bad_conf, "h36m17", slice(60, 63), "legs")
    fixed, _, swapped = fix_left_right(bad, bad_conf, "h36m17")
    assert swapped[30:34, 0].all() and swapped[60:62].any()
    np.testing.assert_array_equal(exchange_labels(bad, swapped, "h36m17"), fixed)
    np.testing.assert_array_equal(exchange_labels(bad, np.zeros_like(swapped), "h36m17"), bad)
    with pytest.raises(ValueError, match="expected swapped"):
        exchange_labels(bad, swapped[:-1], "h36m17")
