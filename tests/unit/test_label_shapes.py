"""Polygon rows in YOLO label files: Ultralytics' segment rows (class x1 y1 ... xn yn) and OBB rows (four
points) are indexed as their bounding boxes, one issue per file saying so; other shapes are named."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from ultralytics.data.utils import verify_image_label
from ultralytics.utils.ops import segments2boxes

from common.domain import entries, proposals
from common.domain.labels import (DECIMALS, LINES_NAMED, SEGMENTS_AS_BOXES, Box, parse_label, rows_from_boxes,
                                  write_label)

FILE = "datasets/d/labels/train/a.txt"
# Written in the layout of coco8-seg's labels (Ultralytics segment format): an outline traced around an object.
COCO_SEG = (b"58 0.519219 0.451121 0.4875 0.404907 0.454141 0.400981 0.435859 0.430981 0.432516 0.495491 "
            b"0.443125 0.562804 0.468594 0.607196 0.502578 0.615748 0.536641 0.589509 0.553906 0.531075 "
            b"0.547266 0.483271\n"
            b"75 0.150781 0.808411 0.128906 0.758879 0.148438 0.713084 0.198438 0.705607 0.221094 0.750467 "
            b"0.203125 0.800935\n")
# Written in the layout of DOTA8's labels (Ultralytics OBB format): four corners, one rotated and one upright.
DOTA_OBB = (b"1 0.512109 0.300781 0.589063 0.351563 0.555078 0.403320 0.478125 0.352539\n"
            b"9 0.603516 0.570313 0.619141 0.570313 0.619141 0.589844 0.603516 0.589844\n")


def codes_and_lines(parsed) -> list[tuple[str, int | None]]:
    return [(issue.code, issue.line) for issue in parsed.issues]


def ultralytics_boxes(tmp_path, label: bytes) -> np.ndarray:
    """What Ultralytics' own dataset check reads from the label: (class, cx, cy, w, h) rows."""
    image, label_file = tmp_path / "a.jpg", tmp_path / "a.txt"
    Image.new("RGB", (64, 48), "gray").save(image)
    label_file.write_bytes(label)
    found = verify_image_label((str(image), str(label_file), "", False, 80, 0, 0, False))
    assert found[-1] == "" and found[1] is not None, found[-1]
    return found[1]


@pytest.mark.parametrize("label", [COCO_SEG, DOTA_OBB], ids=["coco8-seg", "dota8-obb"])
def test_polygon_rows_are_the_boxes_ultralytics_reads(tmp_path, label):
    parsed = parse_label(label, FILE)
    theirs = ultralytics_boxes(tmp_path, label)
    assert [box.line for box in parsed.boxes] == [1, 2]
    assert np.allclose([box.row() for box in parsed.boxes], theirs, atol=2 * 10 ** -DECIMALS)
    assert codes_and_lines(parsed) == [(SEGMENTS_AS_BOXES, 1)]


def test_the_box_of_an_oriented_box_is_the_min_and_max_of_its_corners():
    parsed = parse_label(DOTA_OBB, FILE)
    assert parsed.boxes == [Box(1, 1, 0.533594, 0.352051, 0.110938, 0.102539),
                            Box(2, 9, 0.611329, 0.580078, 0.015625, 0.019531)]


def test_one_issue_per_file_counts_the_polygons_and_says_what_an_edit_does():
    parsed = parse_label(b"0 0.5 0.5 0.2 0.2\n\n" + COCO_SEG + DOTA_OBB, FILE)
    assert len(parsed.boxes) == 5
    assert codes_and_lines(parsed) == [(SEGMENTS_AS_BOXES, 3)]
    message = parsed.issues[0].message
    assert message.startswith("line 3: 4 of 5 rows are polygons or oriented boxes (lines 3, 4, 5, 6: ")
    assert "bounding box" in message and "writes plain boxes: the points are not kept" in message
    assert parsed.issues[0].file == FILE


def test_the_issue_names_the_first_lines_and_counts_every_polygon():
    rows = [f"{i} 0.1 0.1 0.3 0.1 0.2 0.4" for i in range(LINES_NAMED + 7)]
    parsed = parse_label("\n".join(rows).encode(), FILE)
    assert len(parsed.boxes) == LINES_NAMED + 7 and len(parsed.issues) == 1
    assert f"{LINES_NAMED + 7} of {LINES_NAMED + 7} rows" in parsed.issues[0].message
    assert "(lines 1, 2, 3, 4, 5, …: " in parsed.issues[0].message
    one = parse_label(b"0 0.5 0.5 0.2 0.2\n3 0.1 0.1 0.3 0.1 0.2 0.4\n", FILE)
    assert "line 2: 1 of 2 rows is a polygon or an oriented box (line 2: " in one.issues[0].message


def test_bad_polygon_rows_get_the_issues_box_rows_get():
    data = b"\n".join([
        b"0 0.1 0.1 0.2 abc 0.2 0.2",  # 1
        b"0 0.1 0.1 0.2 0.1 nan 0.2",  # 2
        b"-2 0.1 0.1 0.2 0.1 0.2 0.2",  # 3
        b"0.5 0.1 0.1 0.2 0.1 0.2 0.2",  # 4
        b"0 0.1 0.1 0.2 0.1 1.3 0.2",  # 5
        b"0 0.3 0.1 0.3 0.5 0.3 0.9 0.3 0.2",  # 6 a vertical line: no width
        b"0 0.1 0.4 0.5 0.4 0.9 0.4",  # 7 a horizontal line: no height
        b"0 -0.2 0.1 0.2 0.1 0.2 0.2",  # 8
        b"0 0.1 0.1 0.2 0.1 0.2 0.2",  # 9 valid
        b"0 0.2 0.2 0.1 0.1 0.2 0.1",  # 10 another polygon with the same box: a duplicate
        b"0 0.15 0.15 0.1 0.1",  # 11 the same box as a box row: a duplicate
    ])
    parsed = parse_label(data, FILE)
    assert codes_and_lines(parsed) == [
        ("label_not_numeric", 1), ("label_not_finite", 2), ("label_class_negative", 3),
        ("label_class_not_integer", 4), ("label_out_of_range", 5), ("label_nonpositive_size", 6),
        ("label_nonpositive_size", 7), ("label_out_of_range", 8), ("label_duplicate_row", 10),
        ("label_duplicate_row", 11), (SEGMENTS_AS_BOXES, 9)]
    messages = {issue.line: issue.message for issue in parsed.issues if issue.code != SEGMENTS_AS_BOXES}
    assert messages[1] == "line 1: y2 value 'abc' is not a number"
    assert messages[5].startswith("line 5: x3 is 1.3, outside [0, 1] (coordinates must be normalized")
    assert messages[6] == ("line 6: the 4 points have no width inside the image (x from 0.3 to 0.3); "
                           "a box needs a width and height above 0")
    assert "no height" in messages[7] and "x1 is -0.2" in messages[8]
    assert messages[10] == ("line 10: duplicate of line 9 (a polygon whose bounding box is 0 0.15 0.15 0.1 0.1); "
                            "the repeat is ignored")
    assert messages[11] == "line 11: duplicate of line 9 (0 0.15 0.15 0.1 0.1); the repeat is ignored"
    assert parsed.boxes == [Box(9, 0, 0.15, 0.15, 0.1, 0.1)]


def test_points_a_little_past_the_edge_are_clipped_to_the_image():
    parsed = parse_label(b"0 -0.004 0.2 0.5 -0.01 1.006 0.6 0.5 1.01\n", FILE)
    assert parsed.boxes == [Box(1, 0, 0.5, 0.5, 1.0, 1.0)]
    assert codes_and_lines(parsed) == [(SEGMENTS_AS_BOXES, 1)]
    outside = parse_label(b"0 -0.004 -0.005 -0.002 0.6 -0.003 0.3\n", FILE)
    assert codes_and_lines(outside) == [("label_nonpositive_size", 1)]
    assert "no width inside the image (x from -0.004 to -0.002)" in outside.issues[0].message


@pytest.mark.parametrize(("row", "said"), [
    (b"0 0.5 0.5 0.2", "4 values, expected 5 values: class cx cy w h"),
    (b"0 0.5 0.5 0.2 0.2 0.87", "6 values: a box with a confidence score (class cx cy w h conf"),
    (b"0 0.5 0.5 0.2 0.2 0.1 0.1 0.3", "8 values: an even count is neither a box"),
    (b"0 0.5 0.5 0.2 0.2 0.1 0.1 0.3 0.3 0.9", "10 values: an even count is neither a box"),
    (b"0 0.5", "2 values, expected 5 values"),
])
def test_other_shapes_say_what_the_row_looks_like_and_what_is_read(row, said):
    parsed = parse_label(row + b"\n", FILE)
    assert parsed.boxes == [] and codes_and_lines(parsed) == [("label_columns", 1)]
    assert parsed.issues[0].message.startswith(f"line 1: {said}")


def test_an_edit_of_a_polygon_label_writes_plain_boxes_that_read_back_the_same():
    parsed = parse_label(COCO_SEG + DOTA_OBB, FILE)
    boxes = [(box.class_id, box.cx, box.cy, box.w, box.h) for box in parsed.boxes]
    rows, problems = rows_from_boxes(boxes, [f"c{i}" for i in range(80)])
    assert problems == [] and len(rows) == 4 and rows == [box.row() for box in parsed.boxes]
    written = parse_label(write_label(rows), FILE)
    assert written.issues == [] and [box.row() for box in written.boxes] == rows


def test_accepted_proposals_merge_after_the_polygon_rows_without_repeating_their_boxes():
    existing = parse_label(DOTA_OBB, FILE).boxes
    merged = proposals.label_file([existing[0].row(), (4, 0.5, 0.5, 0.2, 0.2)], DOTA_OBB, merge=True, path=FILE)
    assert merged == DOTA_OBB + b"4 0.5 0.5 0.2 0.2\n"
    parsed = parse_label(merged, FILE)
    assert len(parsed.boxes) == 3 and codes_and_lines(parsed) == [(SEGMENTS_AS_BOXES, 1)]


def test_an_entry_with_a_polygon_label_is_labeled_with_its_boxes_and_the_issue():
    parsed = parse_label(DOTA_OBB, FILE)
    entry = entries.new_entry("labels/train/a", "train")
    entries.set_part(entry, "image", {"path": "datasets/d/images/train/a.jpg", "generation": 5,
                                      "sha256": "ab" * 32}, [])
    entries.set_part(entry, "label", {"path": FILE, "generation": 7,
                                      "boxes": [box.to_dict() for box in parsed.boxes]}, parsed.issues)
    derived = entries.derive(entry, 15)
    assert derived["status"] == entries.LABELED and derived["n_boxes"] == 2
    assert derived["class_counts"] == {"c1": 1, "c9": 1}
    assert [issue["code"] for issue in derived["issues"]] == [SEGMENTS_AS_BOXES]


point = st.floats(min_value=0, max_value=1, allow_nan=False, width=32)
polygon = st.lists(st.tuples(point, point), min_size=3, max_size=40)


@settings(max_examples=200, deadline=None)
@given(polygon)
def test_any_polygon_is_read_as_ultralytics_box_around_its_points(points):
    row = "0 " + " ".join(f"{x:.6f} {y:.6f}" for x, y in points)
    parsed = parse_label(row.encode(), FILE)
    xs, ys = [float(f"{x:.6f}") for x, _ in points], [float(f"{y:.6f}") for _, y in points]
    if max(xs) - min(xs) < 1e-6 or max(ys) - min(ys) < 1e-6:
        assert codes_and_lines(parsed) == [("label_nonpositive_size", 1)]
        return
    theirs = segments2boxes([np.array(list(zip(xs, ys)), dtype=np.float64)])[0]
    box = parsed.boxes[0]
    assert np.allclose((box.cx, box.cy, box.w, box.h), theirs, atol=2e-6)
    assert box.cx - box.w / 2 >= -1e-6 and box.cx + box.w / 2 <= 1 + 1e-6


@pytest.mark.parametrize("row", [
    b"0 0.5 " + b"a" * 3_000_000 + b" 0.2 0.2",  # not a number
    b"0 0.5 0.5 0.2 " + b"9" * 2_000_000,  # a number too large to be finite
    b"0 0.5 0.5 0.2 0.5 1." + b"3" * 2_000_000 + b" 0.1",  # a polygon point off the image
    b"-" + b"1" * 1_000_000 + b" 0.5 0.5 0.2 0.2",  # a negative class
])
def test_an_issue_quotes_a_bounded_part_of_a_huge_value(row):
    parsed = parse_label(row + b"\n", FILE)
    assert parsed.boxes == [] and len(parsed.issues) == 1
    assert len(parsed.issues[0].message) < 300 and "…" in parsed.issues[0].message


def test_a_duplicate_of_a_long_row_quotes_a_bounded_part_of_it():
    row = b"0 0." + b"5" * 1_000_000 + b" 0.5 0.2 0.2\n"
    parsed = parse_label(row + row, FILE)
    assert len(parsed.boxes) == 1 and [issue.code for issue in parsed.issues] == ["label_duplicate_row"]
    assert len(parsed.issues[0].message) < 300
