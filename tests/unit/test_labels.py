from hypothesis import given, settings
from hypothesis import strategies as st

from common.domain.labels import (DECIMALS, MAX_LABEL_ROWS, Box, ParsedLabel, boxes_in_range, class_issues,
                                  parse_label, rows_from_boxes, write_label)

FILE = "datasets/d/labels/train/a.txt"


def codes_and_lines(parsed: ParsedLabel) -> list[tuple[str, int | None]]:
    return [(issue.code, issue.line) for issue in parsed.issues]


def test_valid_rows_become_boxes():
    parsed = parse_label(b"0 0.5 0.5 0.2 0.3\n2.0 0.1 0.9 1 1\n", FILE)
    assert parsed.issues == []
    assert parsed.boxes == [Box(1, 0, 0.5, 0.5, 0.2, 0.3), Box(2, 2, 0.1, 0.9, 1.0, 1.0)]
    assert parsed.boxes[1].class_id == 2 and isinstance(parsed.boxes[1].class_id, int)


def test_empty_and_blank_files_are_backgrounds():
    for data in (b"", b"\n  \n\t\n", b"\xef\xbb\xbf"):
        assert parse_label(data, FILE) == ParsedLabel([], [])


def test_blank_lines_keep_line_numbers_and_crlf_is_fine():
    parsed = parse_label(b"\r\n0 0.5 0.5 0.2 0.2\r\n\r\n1 0.5 0.5 0.2 x\r\n", FILE)
    assert parsed.boxes == [Box(2, 0, 0.5, 0.5, 0.2, 0.2)]
    assert codes_and_lines(parsed) == [("label_not_numeric", 4)]
    assert parsed.issues[0].message == "line 4: h value 'x' is not a number"
    assert parsed.issues[0].file == FILE


def test_bom_is_tolerated():
    parsed = parse_label(b"\xef\xbb\xbf0 0.5 0.5 0.2 0.2\n", FILE)
    assert parsed.issues == [] and len(parsed.boxes) == 1


def test_not_utf8():
    parsed = parse_label(b"0 0.5 0.5 0.2 0.2\n\xff\xfe\x00", FILE)
    assert parsed.boxes == []
    assert codes_and_lines(parsed) == [("label_not_utf8", None)]
    assert "0xff" in parsed.issues[0].message


def test_each_row_problem_has_its_code_and_line():
    data = b"\n".join([
        b"0 0.5 0.5 0.2",  # 1 too few columns
        b"0 0.1 0.1 0.2 0.1 0.2 0.2 0.3",  # 2 an even count: neither a box nor a polygon
        b"0 0.5 abc 0.2 0.2",  # 3
        b"0 nan 0.5 0.2 0.2",  # 4
        b"-1 0.5 0.5 0.2 0.2",  # 5
        b"1.5 0.5 0.5 0.2 0.2",  # 6
        b"0 1.2 0.5 0.2 0.2",  # 7
        b"0 0.5 0.5 0 0.2",  # 8
        b"0 0.5 0.5 0.2 -0.3",  # 9 nonpositive wins over out of range
        b"0 0.5 0.5 0.2 1.5",  # 10
        b"3 0.5 0.5 0.2 0.2",  # 11 valid
        b"3 0.50 0.5 0.2 0.2",  # 12 duplicate of 11
        b"0 inf 0.5 0.2 0.2",  # 13
        b"0 1_0 0.5 0.2 0.2",  # 14
        b"0 0.5 0.5 0.2 0.2 0.1",  # 15 six columns
    ])
    parsed = parse_label(data, FILE)
    assert codes_and_lines(parsed) == [
        ("label_columns", 1), ("label_columns", 2), ("label_not_numeric", 3), ("label_not_finite", 4),
        ("label_class_negative", 5), ("label_class_not_integer", 6), ("label_out_of_range", 7),
        ("label_nonpositive_size", 8), ("label_nonpositive_size", 9), ("label_out_of_range", 10),
        ("label_duplicate_row", 12), ("label_not_finite", 13), ("label_not_numeric", 14), ("label_columns", 15),
    ]
    assert parsed.boxes == [Box(11, 3, 0.5, 0.5, 0.2, 0.2)]
    messages = {issue.line: issue.message for issue in parsed.issues}
    assert "8 values: an even count is neither a box" in messages[2] and "keypoint" in messages[2]
    assert "6 values: a box with a confidence score" in messages[15]
    assert messages[7] == "line 7: cx is 1.2, outside [0, 1] (coordinates must be normalized by the image size)"
    assert "duplicate of line 11" in messages[12]
    assert "-1" in messages[5] and "1.5" in messages[6]


def test_only_first_problem_of_a_row_is_reported():
    parsed = parse_label(b"-1 2 2 0 0\n", FILE)
    assert codes_and_lines(parsed) == [("label_class_negative", 1)]


def test_too_many_rows_keeps_the_first_ones():
    rows = [f"0 0.5 0.5 {(i + 1) / 20000:.6f} 0.1" for i in range(MAX_LABEL_ROWS + 5)]
    parsed = parse_label("\n".join(rows).encode(), FILE)
    assert codes_and_lines(parsed) == [("label_too_many_rows", MAX_LABEL_ROWS + 1)]
    assert len(parsed.boxes) == MAX_LABEL_ROWS
    assert str(MAX_LABEL_ROWS + 5) in parsed.issues[0].message


def test_class_issues_and_boxes_in_range():
    boxes = parse_label(b"0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n\n3 0.5 0.5 0.2 0.2\n", FILE).boxes
    assert class_issues(boxes, None, FILE) == []
    issues = class_issues(boxes, 3, FILE)
    assert [(i.code, i.line) for i in issues] == [("label_class_out_of_range", 2), ("label_class_out_of_range", 4)]
    assert issues[0].message == "line 2: class id 7 is not below the class count 3 (names in data.yaml)"
    assert [b.line for b in boxes_in_range(boxes, 3)] == [1]
    assert boxes_in_range(boxes, None) == boxes


def test_box_round_trips_through_dict():
    box = Box(4, 1, 0.25, 0.5, 0.125, 1.0)
    assert box.to_dict() == {"line": 4, "class_id": 1, "cx": 0.25, "cy": 0.5, "w": 0.125, "h": 1.0}
    assert Box.from_dict(box.to_dict()) == box


# ---- the writer ------------------------------------------------------------

coordinate = st.floats(min_value=0, max_value=1, allow_nan=False).map(lambda v: round(v, DECIMALS))
size = st.floats(min_value=1e-6, max_value=1, allow_nan=False).map(lambda v: round(v, DECIMALS)).filter(bool)
row = st.tuples(st.integers(min_value=0, max_value=999), coordinate, coordinate, size, size)
distinct_rows = st.lists(row, max_size=30, unique=True)


@settings(max_examples=300, deadline=None)
@given(distinct_rows)
def test_written_rows_parse_back_to_themselves_without_issues(rows):
    parsed = parse_label(write_label(rows), "l.txt")
    assert parsed.issues == []
    assert [box.row() for box in parsed.boxes] == rows


@settings(max_examples=300, deadline=None)
@given(distinct_rows)
def test_write_of_parse_is_the_identity_on_written_files(rows):
    text = write_label(rows)
    assert write_label(box.row() for box in parse_label(text, "l.txt").boxes) == text


def test_writer_is_canonical():
    assert write_label([(0, 0.5, 0.25, 1.0, 0.1234564), (3, 0.0, 1, 0.000001, 0.3333333333)]) == \
        b"0 0.5 0.25 1 0.123456\n3 0 1 0.000001 0.333333\n"
    assert write_label([]) == b""


# ---- boxes sent by a person ---------------------------------------------------

NAMES = ["person", "bus"]


def test_sound_boxes_become_rows():
    rows, problems = rows_from_boxes([(0, 0.5, 0.5, 0.2, 0.1), ("bus", 1, 0, 1, 0.3333333)], NAMES)
    assert problems == [] and rows == [(0, 0.5, 0.5, 0.2, 0.1), (1, 1.0, 0.0, 1.0, 0.333333)]
    assert rows_from_boxes([], NAMES) == ([], [])


def test_every_bad_box_is_named_by_position_and_nothing_is_kept():
    """A box's shape (numbers, a class by id or name) is its body model's (tests/unit/test_request_bodies.py)."""
    rows, problems = rows_from_boxes([(0, 0.5, 0.5, 0.2, 0.1), (0, 1.4, 0.5, 0.2, 0.1), ("tie", 0.5, 0.5, 0.2, 0.1),
                                      (5, 0.5, 0.5, 0.2, 0.1), (0, 0.5, 0.5, 0, 0.1), ("tie", 0.5, 0.5, 0.2, 0.1)],
                                     NAMES)
    assert rows == []
    assert [p.split(":", 1)[0] for p in problems] == [f"labels[{i}]" for i in range(1, 6)]
    assert "cx is 1.4, outside [0, 1]" in problems[0] and "unknown class 'tie'" in problems[1]
    assert "not below the class count 2" in problems[2] and "w is 0" in problems[3]
    assert rows_from_boxes([("bus", 0.5, 0.5, 0.2, 0.1)], None)[1] == [
        "labels[0]: unknown class 'bus'; the classes are none yet (no data.yaml)"]


def test_a_repeated_box_is_refused_as_in_a_file():
    box = (1, 0.5, 0.5, 0.2, 0.1)
    assert rows_from_boxes([box, box], NAMES)[1] == ["labels[1]: duplicate of line 1 (1 0.5 0.5 0.2 0.1); "
                                                     "the repeat is ignored"]
