"""Small people: the detector's tiling (crops of the frame at full resolution, merged with the whole frame's
detections), --conf and --imgsz."""

from __future__ import annotations

import numpy as np
import pytest

from video3d.detector import PassDetections, box_iou, merge_passes, tile_windows, whole_in_crop
from video3d.errors import InputError
from video3d.options import ReconstructOptions


@pytest.mark.parametrize("width, height, size, expected", [
    (640, 480, 640, 0),      # fits in one crop: the whole-frame pass sees it at full resolution
    (640, 640, 640, 0),
    (1280, 720, 640, 6),     # 3 x 2
    (1920, 1080, 640, 8),    # 4 x 2
    (3840, 2160, 640, 40),   # 8 x 5
    (1000, 300, 640, 2),     # one row
])
def test_tiles_cover_the_frame_with_overlap_and_stay_inside(width, height, size, expected):
    tiles = tile_windows(width, height, size)
    assert len(tiles) == expected
    if not tiles:
        return
    cover = np.zeros((height, width), int)
    for x0, y0, x1, y1 in tiles:
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        assert x1 - x0 == min(size, width) and y1 - y0 == min(size, height)
        cover[y0:y1, x0:x1] += 1
    assert cover.min() >= 1  # every pixel in some crop
    xs = sorted({t[0] for t in tiles})
    if len(xs) > 1:  # neighbours overlap by at least a quarter of a crop
        assert min(b - a for a, b in zip(xs, xs[1:])) <= 0.75 * size


def test_a_box_touching_an_inner_crop_edge_is_cut_but_one_at_the_frame_edge_is_not():
    crop = (600, 0, 1240, 640)  # a middle crop of a 1920 x 1080 frame: left, right, bottom edges are inner
    boxes = np.array([[700, 100, 800, 400],    # inside
                      [601, 100, 700, 400],    # at the crop's left edge: cut
                      [700, 300, 800, 639],    # at the bottom edge: cut
                      [700, 0, 800, 300]],     # at the top edge, which is the frame's: whole
                     np.float32)
    assert whole_in_crop(boxes, crop, 1920, 1080).tolist() == [True, False, False, True]


def detections(*boxes_scores) -> PassDetections:
    boxes = np.array([b for b, _ in boxes_scores], np.float32).reshape(-1, 4)
    scores = np.array([s for _, s in boxes_scores], np.float32)
    kps = np.repeat(boxes[:, None, :2], 17, 1) + np.arange(17, dtype=np.float32)[None, :, None]
    return PassDetections(boxes, scores, kps, np.full((len(scores), 17), 0.9, np.float32))


def test_merge_keeps_one_detection_per_person_the_tiles_first():
    whole = detections(([100, 100, 200, 400], 0.9), ([1000, 100, 1040, 200], 0.2))
    tile_a = detections(([102, 98, 198, 405], 0.6), ([500, 500, 520, 540], 0.5))  # the same first person
    tile_b = detections(([501, 499, 521, 541], 0.7))                             # the small one, again
    merged = merge_passes([tile_a, tile_b], whole)
    assert len(merged) == 3
    # the first person is the tile's detection (full resolution), not the whole frame's higher-scored one
    assert merged.boxes[:, 0].tolist().count(102) == 1 and 100 not in merged.boxes[:, 0].tolist()
    # the small person once, the better-scored of the two tiles
    assert np.isclose(merged.scores[merged.boxes[:, 0] == 501], 0.7).all() and 500 not in merged.boxes[:, 0]
    assert 1000 in merged.boxes[:, 0]  # found by the whole frame only: kept
    # keypoints travel with their box
    for box, kp in zip(merged.boxes, merged.keypoints):
        assert np.allclose(kp[0], box[:2])


def test_merge_never_drops_two_overlapping_people_of_one_pass():
    """Two people one in front of the other: YOLO's NMS within the pass decided they are two."""
    whole = detections(([100, 100, 200, 400], 0.9), ([120, 90, 220, 420], 0.8))
    assert box_iou(whole.boxes[:1], whole.boxes[1:])[0, 0] > 0.5
    assert len(merge_passes([], whole)) == 2


def test_merge_drops_a_narrower_box_inside_a_person_of_the_same_pass():
    """At full resolution YOLO gives some people a second box inside the first (IoU 0.64-0.68, under its NMS
    threshold): one person, not two (seen on benchmarks/small_people.py's mosaics)."""
    tile = detections(([235, 73, 278, 255], 0.81), ([248, 78, 276, 255], 0.48))
    merged = merge_passes([tile], detections())
    assert len(merged) == 1 and np.isclose(merged.scores[0], 0.81)


@pytest.mark.parametrize("settings, message", [
    ({"conf": 0}, "conf is a detection score"),
    ({"conf": 1.5}, "conf is a detection score"),
    ({"imgsz": 650}, "imgsz is a multiple of 32"),
    ({"imgsz": 0}, "imgsz is a multiple of 32"),
    ({"imgsz": True}, "imgsz is a multiple of 32"),
])
def test_bad_detector_settings_fail_on_construction(settings, message):
    with pytest.raises(InputError, match=message):
        ReconstructOptions(**settings)


def test_tiling_finds_small_people_the_whole_frame_misses(detector_path, apart_video):
    """The real video shrunk to 1/6 and tiled 4 x 4 on a 1920 x 1080 canvas (people ~130 px tall): the whole
    frame at 640 px finds under half of them, the tiles nearly all (benchmarks/small_people.py measures more)."""
    import cv2

    from video3d.detector import PoseDetector
    from video3d.video import probe, read_frames

    info = probe(apart_video)
    frame = next(iter(read_frames(info)))
    small = cv2.resize(frame, (320, 180), interpolation=cv2.INTER_AREA)
    canvas = np.full((1080, 1920, 3), 114, np.uint8)
    canvas[180:900, 320:1600] = np.tile(small, (4, 4, 1))
    with PoseDetector(detector_path, device="cpu", fps=info.fps) as det:
        found = len(det.detect(frame))
        plain = len(det.detect(canvas))
    with PoseDetector(detector_path, device="cpu", fps=info.fps, tile=True) as det:
        tiled = det.detect(canvas)
    people = 16 * found
    assert found == 2 and plain < 0.5 * people
    assert 0.9 * people <= len(tiled) <= people + 2
    # each found once: no two merged detections are the same person
    iou = box_iou(tiled.boxes, tiled.boxes)
    np.fill_diagonal(iou, 0)
    assert iou.max() < 0.5


def test_a_fixed_size_export_refuses_another_imgsz(detector_path):
    from video3d.detector import PoseDetector
    from video3d.errors import DetectorError

    with PoseDetector(detector_path, device="cpu", imgsz=1280) as det:
        with pytest.raises(DetectorError, match="fixed 640x640 input"):
            det.detect(np.zeros((720, 1280, 3), np.uint8))
