"""Converters against hand-made files: known keypoints land on the right COCO-17 joints."""

import json

import numpy as np
import pytest

from video3d.errors import InputError
from video3d.importers import load_keypoints, read_coco, read_openpose
from video3d.layouts import COCO17

BODY25_NAMES = ["Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip",
                "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe",
                "LHeel", "RBigToe", "RSmallToe", "RHeel"]
COCO18_NAMES = ["Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "RHip", "RKnee",
                "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar"]
TO_COCO = {"Nose": "nose", "LEye": "left_eye", "REye": "right_eye", "LEar": "left_ear", "REar": "right_ear",
           "LShoulder": "left_shoulder", "RShoulder": "right_shoulder", "LElbow": "left_elbow",
           "RElbow": "right_elbow", "LWrist": "left_wrist", "RWrist": "right_wrist", "LHip": "left_hip",
           "RHip": "right_hip", "LKnee": "left_knee", "RKnee": "right_knee", "LAnkle": "left_ankle",
           "RAnkle": "right_ankle"}


def openpose_person(names, shift=0.0, missing=()):
    flat = []
    for i, name in enumerate(names):
        if name in missing:
            flat += [0, 0, 0]
        else:
            flat += [10.0 * i + shift, 5.0 * i, 0.9]  # each keypoint placed by its index in the format
    return {"person_id": [-1], "pose_keypoints_2d": flat}


@pytest.mark.parametrize("names", [BODY25_NAMES, COCO18_NAMES], ids=["BODY_25", "COCO-18"])
def test_openpose_formats_map_to_coco17(tmp_path, names):
    for f in range(3):
        (tmp_path / f"clip_{f:012d}_keypoints.json").write_text(json.dumps(
            {"version": 1.3, "people": [openpose_person(names, shift=f, missing=("LEar",))]}))
    frames = read_openpose(tmp_path)
    assert len(frames) == 3
    det = frames[1][0]
    kp, conf = det.keypoints, det.keypoint_confidence
    seen = np.isfinite(kp).all(-1)
    np.testing.assert_allclose(det.box, [*kp[seen].min(0), *kp[seen].max(0)])  # the box around the seen keypoints
    for op_name, coco_name in TO_COCO.items():
        j = COCO17.index(coco_name)
        if op_name == "LEar":
            assert np.isnan(kp[j]).all() and conf[j] == 0
        else:
            i = names.index(op_name)
            np.testing.assert_allclose(kp[j], [10.0 * i + 1, 5.0 * i])


def test_openpose_people_are_tracked_across_frames(tmp_path):
    for f in range(4):
        people = [openpose_person(BODY25_NAMES, shift=500 + 2 * f), openpose_person(BODY25_NAMES, shift=2 * f)]
        if f % 2:
            people.reverse()  # OpenPose lists people in no stable order
        (tmp_path / f"v_{f:012d}_keypoints.json").write_text(json.dumps({"people": people}))
    result = load_keypoints(tmp_path, fps=30.0, frame_size=(1280, 720))
    assert result.num_persons == 2 and result.num_frames == 4
    for person in result.persons_2d:
        nose_x = person.keypoints[:, 0, 0]
        np.testing.assert_allclose(np.diff(nose_x), 2.0)  # each track follows one person


def test_coco_results_list_with_visibility(tmp_path):
    kps = []
    for j in range(17):
        kps += [float(j), float(2 * j), 0.0 if j == 3 else 0.8]
    doc = [{"image_id": 7, "category_id": 1, "keypoints": kps, "score": 0.9, "track_id": 4},
           {"image_id": 5, "category_id": 1, "keypoints": kps, "score": 0.9, "track_id": 4}]
    path = tmp_path / "res.json"
    path.write_text(json.dumps(doc))
    frames, size = read_coco(path)
    assert size is None and len(frames) == 2
    kp, conf, tid = frames[0][0].keypoints, frames[0][0].keypoint_confidence, frames[0][0].track_id
    assert tid == 4 and np.isnan(kp[3]).all() and conf[3] == 0
    np.testing.assert_allclose(kp[COCO17.index("left_hip")], [11, 22])
    result = load_keypoints(path, fps=25.0, frame_size=(640, 480))
    assert result.track_ids.tolist() == [4]


def person(x):
    return [v for j in range(17) for v in (x, 10.0 * j, 2)]  # visibility 2: labelled and visible


def test_coco_dataset_gives_the_frame_size(tmp_path):
    doc = {"images": [{"id": 2, "width": 800, "height": 600, "frame_id": 1},
                      {"id": 1, "width": 800, "height": 600, "frame_id": 0}],
           "annotations": [{"image_id": 1, "category_id": 1, "keypoints": person(1.0)},
                           {"image_id": 2, "category_id": 1, "keypoints": person(3.0)}]}
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(doc))
    result = load_keypoints(path, fps=30.0)
    assert result.frame_size == (800, 600) and result.num_frames == 2
    np.testing.assert_allclose(result.persons_2d[0].keypoints[:, 0, 0], [1.0, 3.0])  # frame order by frame_id


def test_missing_size_or_fps_is_asked_for(tmp_path):
    (tmp_path / "a_keypoints.json").write_text(json.dumps({"people": [openpose_person(BODY25_NAMES)]}))
    with pytest.raises(InputError, match="--frame-size"):
        load_keypoints(tmp_path, fps=30.0)
    with pytest.raises(InputError, match="--fps"):
        load_keypoints(tmp_path, frame_size=(10, 10))


def test_wrong_keypoint_count(tmp_path):
    (tmp_path / "a_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [1, 2, 3] * 15}]}))
    with pytest.raises(InputError, match="BODY_25"):
        read_openpose(tmp_path)
