import numpy as np
import pytest

from video3d.errors import InputError, OutputError
from video3d.results import PoseResult, load_npz
from video3d.sequence import PoseSequence


def make_result(P=2, T=6):
    rng = np.random.default_rng(0)
    persons = []
    for p in range(P):
        kp = rng.uniform(0, 600, size=(T, 17, 2)).astype(np.float32)
        conf = np.ones((T, 17), np.float32)
        kp[0, 3] = np.nan
        conf[0, 3] = 0
        persons.append(PoseSequence(kp, conf, 25.0, "coco17", track_id=10 + p, frame_size=(640, 480)))
    r = PoseResult(persons, 25.0, (640, 480), source="clip.mp4")
    k3 = rng.normal(size=(T, 17, 3)).astype(np.float32)
    k3[2] = np.nan
    r.persons_3d = [PoseSequence(k3, np.isfinite(k3[..., 0]).astype(np.float32), 25.0, "h36m17", track_id=10 + p)
                    for p in range(P)]
    r.interpolated = np.zeros((P, T), bool)
    r.lifter = "gastnet (gastnet_27f.pt)"
    return r


def test_npz_contract(tmp_path):
    path = make_result().save_npz(tmp_path / "poses.npz")
    d = np.load(path)
    assert d["keypoints_2d"].shape == (2, 6, 17, 3) and d["keypoints_2d"].dtype == np.float32
    assert str(d["layout_2d"]) == "coco17"
    assert d["keypoints_3d"].shape == (2, 6, 17, 3) and d["keypoints_3d"].dtype == np.float32
    assert d["valid"].dtype == bool and d["valid"].shape == (2, 6) and not d["valid"][0, 2]
    assert d["track_ids"].tolist() == [10, 11]
    assert float(d["fps"]) == 25.0 and d["frame_size"].tolist() == [640, 480]
    assert str(d["lifter"]).startswith("gastnet")
    assert np.isnan(d["keypoints_2d"][0, 0, 3, :2]).all() and d["keypoints_2d"][0, 0, 3, 2] == 0


def test_npz_round_trip(tmp_path):
    r = make_result()
    back = load_npz(r.save_npz(tmp_path / "p.npz"))
    np.testing.assert_array_equal(back.keypoints_2d(), r.keypoints_2d())
    np.testing.assert_array_equal(back.keypoints_3d(), r.keypoints_3d())
    np.testing.assert_array_equal(back.valid(), r.valid())
    assert back.lifter == r.lifter and back.fps == 25.0 and back.frame_size == (640, 480)


def test_no_silent_overwrite_and_no_leftovers(tmp_path):
    path = tmp_path / "p.npz"
    make_result().save_npz(path)
    with pytest.raises(OutputError, match="--force"):
        make_result().save_npz(path)
    make_result().save_npz(path, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.npz"]


def test_foreign_single_person_npz(tmp_path):
    kp = np.random.default_rng(0).uniform(0, 100, size=(8, 17, 2)).astype(np.float32)
    np.savez(tmp_path / "other.npz", keypoints_2d=kp, layout_2d="h36m17", frame_size=[100, 100], fps=50.0)
    r = load_npz(tmp_path / "other.npz")
    assert r.num_persons == 1 and r.num_frames == 8 and r.layout_2d == "h36m17"
    assert (r.persons_2d[0].confidence == 1).all()


@pytest.mark.parametrize("arrays,match", [
    (dict(keypoints_2d=np.zeros((3, 17, 2)), frame_size=[1, 1]), "lacks layout_2d"),
    (dict(keypoints_2d=np.zeros((3, 17, 2)), layout_2d="mpii", frame_size=[1, 1]), "unknown joint layout"),
    (dict(keypoints_2d=np.zeros((3, 15, 2)), layout_2d="coco17", frame_size=[1, 1], fps=1), r"\(P, T, 17"),
    (dict(keypoints_2d=np.zeros((3, 17, 2)), layout_2d="coco17", frame_size=[1, 1]), "no fps"),
])
def test_bad_npz_files(tmp_path, arrays, match):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError, match=match):
        load_npz(tmp_path / "bad.npz")


def test_not_an_npz(tmp_path):
    (tmp_path / "x.npz").write_text("hello")
    with pytest.raises(InputError, match="not a readable npz"):
        load_npz(tmp_path / "x.npz")
