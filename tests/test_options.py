"""ReconstructOptions: one checked set of options, and stages that return new results."""

import dataclasses

import numpy as np
import pytest

from video3d.errors import InputError
from video3d.options import ReconstructOptions, parse_persons

from .conftest import SAMPLE_GT


@pytest.mark.parametrize("field, value, message", [
    ("smooth", "silky", "smooth is one of"),
    ("rebase", "floor", "rebase is one of ground, sequence, frame, none"),
    ("up", "x", "up is one of y, z"),
    ("windows", "middle", "windows is one of blend, centre"),
    ("quality", "best", "quality is one of balanced, fast"),
    ("device", "tpu", "device is one of auto, cpu, cuda"),
    ("export", ("npz", "fbx"), "unknown export format fbx"),
    ("persons", 0, "persons is a positive number or 'all'"),
    ("persons", "some", "persons is a positive number or 'all'"),
    ("max_gap", -1.0, "max_gap must be >= 0"),
])
def test_a_bad_option_fails_on_construction_naming_the_valid_ones(field, value, message):
    with pytest.raises(InputError, match=message):
        ReconstructOptions(**{field: value})


def test_options_are_normalised_once():
    o = ReconstructOptions(persons="ALL", export="json,BVH", weights=SAMPLE_GT)
    assert o.persons == "all" and o.export == ("json", "bvh") and o.weights == str(SAMPLE_GT)
    assert ReconstructOptions(persons="3").persons == 3 and parse_persons(2) == 2


def test_of_puts_settings_on_top_and_refuses_unknown_names():
    base = ReconstructOptions(lifter="stcformer", write_video=False)
    o = ReconstructOptions.of(base, smooth="none")
    assert (o.lifter, o.write_video, o.smooth) == ("stcformer", False, "none") and base.smooth != "none"
    with pytest.raises(TypeError, match="unknown reconstruct options \\['lifters'\\]; valid: lifter, weights"):
        ReconstructOptions.of(lifters="gastnet")
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.smooth = "light"


def test_every_reconstruct_flag_is_an_option():
    """The CLI builds ReconstructOptions from its parameters by name: a flag with no field would be dropped."""
    import inspect

    from video3d import cli

    names = set(ReconstructOptions.names()) | {"no_video"}
    for command, own in ((cli.reconstruct, {"video", "output_dir", "keypoints", "force"}),
                         (cli.batch, {"inputs", "output_dir", "jobs", "threads", "retry_failed", "ray", "ray_address",
                                      "gpus", "force"}),
                         (cli.lift, {"keypoints", "output", "fps", "frame_size", "force"})):
        params = set(inspect.signature(command).parameters)
        assert params - own <= names, command.__name__
        assert params - own, command.__name__


def test_describe_names_loaded_models_by_their_weights(random_checkpoint):
    from video3d.lifters import create_lifter

    lifter = create_lifter("gastnet", weights=random_checkpoint, device="cpu")
    text = ReconstructOptions(lifter=lifter).describe()
    assert text["lifter"] == f"gastnet ({random_checkpoint})" and text["persons"] == "1"


def test_lift_and_place_return_new_results_and_leave_theirs_alone(random_checkpoint):
    from video3d.pipeline import lift, place
    from video3d.results import PoseResult
    from video3d.sequence import PoseSequence

    gt = np.load(SAMPLE_GT)
    kp = gt["keypoints_2d"].astype(np.float32)
    before = PoseResult([PoseSequence(kp, np.ones(kp.shape[:2], np.float32), 25.0, "h36m17", 1, (640, 480))],
                        25.0, (640, 480))
    lifted = lift(before, "gastnet", weights=random_checkpoint, device="cpu", smooth="none")
    assert lifted is not before and before.persons_3d is None and before.timings == {} and before.lifter == ""
    assert lifted.persons_3d[0].keypoints.shape == (len(kp), 17, 3) and "lift" in lifted.timings
    placed = place(lifted)
    assert lifted.world is None and placed.world is not None and placed.persons_3d is lifted.persons_3d
