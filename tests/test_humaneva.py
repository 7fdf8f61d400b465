"""HumanEva-I as a cross-dataset check: the joint mapping, the loader's checks, the evaluation and its command."""

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from video3d.cli import app
from video3d.data.h36m import DataError
from video3d.data.humaneva import H36M_OF_HE15, HE15, load_takes, to_h36m17
from video3d.layouts import H36M17

ROOT = Path(__file__).resolve().parent.parent
HE = ROOT.parent / "shared" / "data" / "humaneva15"
needs_humaneva = pytest.mark.skipif(not (HE / "data_3d_humaneva15.npz").is_file(),
                                    reason="needs ../shared/data/humaneva15 (HumanEva-I)")


@pytest.mark.parametrize("he_joint", range(15))
def test_every_humaneva_joint_goes_to_the_human36m_joint_of_its_name(he_joint):
    name = HE15[he_joint]
    assert H36M17.joints[H36M_OF_HE15[he_joint]] == {"head": "head"}.get(name, name)


def test_spine_and_nose_are_made_between_their_neighbours():
    he = np.random.default_rng(0).normal(size=(4, 15, 3)).astype(np.float32)
    h = to_h36m17(he)
    np.testing.assert_allclose(h[:, list(H36M_OF_HE15)], he)
    np.testing.assert_allclose(h[:, 7], (he[:, 0] + he[:, 1]) / 2)  # spine: pelvis-thorax midpoint
    np.testing.assert_allclose(h[:, 9], he[:, 1] + 0.5 * (he[:, 14] - he[:, 1]), rtol=1e-6)  # nose


def write_vp3d(tmp_path, p3, p2):
    np.savez(tmp_path / "3d.npz", positions_3d=np.array({"Validate/S1": {"Walking 1 chunk0": p3}}, dtype=object))
    np.savez(tmp_path / "2d.npz", positions_2d=np.array({"Validate/S1": {"Walking 1 chunk0": p2}}, dtype=object))
    return tmp_path / "3d.npz", tmp_path / "2d.npz"


def test_takes_are_one_per_camera_and_mismatched_frames_are_refused(tmp_path):
    p3 = np.zeros((10, 15, 3), np.float32)
    a, b = write_vp3d(tmp_path, p3, [np.zeros((10, 15, 2), np.float32)] * 3)
    takes = load_takes(a, b, subjects=["Validate/S1"])
    assert [t.camera for t in takes] == [0, 1, 2] and takes[0].action_group == "Walking"
    a, b = write_vp3d(tmp_path, p3, [np.zeros((9, 15, 2), np.float32)])
    with pytest.raises(DataError, match=r"camera 0 is \(9, 15, 2\)"):
        load_takes(a, b, subjects=["Validate/S1"])
    with pytest.raises(DataError, match="no subject Validate/S2"):
        load_takes(a, b, subjects=["Validate/S2"])


@needs_humaneva
@pytest.mark.slow
def test_the_shipped_lifter_on_humaneva_and_the_command(tmp_path):
    out = tmp_path / "he.json"
    r = CliRunner().invoke(app, ["evaluate", "--dataset", "humaneva", "--data", str(HE / "data_3d_humaneva15.npz"),
                                 "--subjects", "Validate/S1", "--device", "cpu", "--json", str(out)])
    assert r.exit_code == 0, r.output
    import json

    report = json.loads(out.read_text())
    assert set(report["actions"]) == {"Walking", "Jog", "Box"} and report["subjects"] == ["Validate/S1"]
    assert 20 < report["average_p_mpjpe"] < 80  # a Human3.6M lifter across datasets: tens of mm, not hundreds
    r = CliRunner().invoke(app, ["evaluate", "--dataset", "humaneva", "--data", str(HE / "data_3d_humaneva15.npz"),
                                 "--noise-px", "3"])
    assert r.exit_code == 2 and "takes no perturbation" in r.output
