"""YOLO detection label files: one box per row, `class cx cy w h`, coordinates normalized to [0, 1].

The one reader (parse_label: every row checked, problems as issues) and the one
writer (write_label: the canonical text) of label files in this system.
A polygon row (`class x1 y1 ... xn yn`, n >= 3: Ultralytics' segment labels, and
its OBB labels with n = 4) is read as its bounding box, with one issue per file
saying so: the index is detection-only and an edit writes plain boxes.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from collections.abc import Iterable, Sequence
from typing import Any, cast

from common.domain.issues import Issue

MAX_LABEL_ROWS = 10_000
COLUMNS = ("class", "cx", "cy", "w", "h")
SIZE_COLUMNS = ("w", "h")
_LINE_BREAK = re.compile(r"\r\n|\n|\r")
DECIMALS = 6  # a millionth of the image side
Row = tuple[int, float, float, float, float]  # class cx cy w h
MIN_POLYGON_POINTS = 3  # class x1 y1 x2 y2 x3 y3: 7 values
SEGMENTS_AS_BOXES = "label_segments_as_boxes"
LINES_NAMED = 5  # the polygon rows an issue names by line; it counts them all
# Points of rotated boxes and traced outlines often pass the image edge a little: Ultralytics accepts up to 1%
# outside [0, 1], and so does this reader, clipping the bounding box to the image.
POLYGON_EDGE_TOLERANCE = 0.01
SHOWN_CHARACTERS = 40  # of a value quoted in an issue: one "number" of a hostile file can be megabytes long


@dataclass(frozen=True)
class Box:
    line: int  # 1-based line number in the file
    class_id: int
    cx: float
    cy: float
    w: float
    h: float

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "class_id": self.class_id,
                "cx": self.cx, "cy": self.cy, "w": self.w, "h": self.h}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Box:
        return cls(int(data["line"]), int(data["class_id"]), float(data["cx"]),
                   float(data["cy"]), float(data["w"]), float(data["h"]))

    def row(self) -> Row:
        """The box as a label row; also what makes two rows the same box, whatever line they are on."""
        return (self.class_id, self.cx, self.cy, self.w, self.h)


@dataclass(frozen=True)
class ParsedLabel:
    boxes: list[Box]  # the valid rows, duplicates removed (first kept)
    issues: list[Issue]  # format issues (independent of the class list)


class _RowProblem(Exception):
    """The first thing wrong with one row; becomes an Issue for that line."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def parse_label(data: bytes, file: str) -> ParsedLabel:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        message = f"the label file is not UTF-8 text (byte {error.start} is 0x{data[error.start]:02x})"
        return ParsedLabel([], [Issue("label_not_utf8", message, file)])
    rows = _non_blank_rows(text)
    issues: list[Issue] = []
    if len(rows) > MAX_LABEL_ROWS:
        first_skipped = rows[MAX_LABEL_ROWS][0]
        issues.append(Issue("label_too_many_rows", f"line {first_skipped}: the file has {len(rows)} rows; "
                            f"only the first {MAX_LABEL_ROWS} are checked and indexed", file, first_skipped))
        rows = rows[:MAX_LABEL_ROWS]
    boxes = _boxes_without_duplicates(rows, file, issues)
    return ParsedLabel(boxes, issues)


def _non_blank_rows(text: str) -> list[tuple[int, str]]:
    return [(number, line) for number, line in enumerate(_LINE_BREAK.split(text), start=1) if line.strip()]


def _boxes_without_duplicates(rows: list[tuple[int, str]], file: str, issues: list[Issue]) -> list[Box]:
    boxes: list[Box] = []
    first_line_of: dict[tuple[Any, ...], int] = {}
    polygon_lines: list[int] = []
    for number, line in rows:
        try:
            box, from_polygon = _parse_row(number, line)
        except _RowProblem as problem:
            issues.append(Issue(problem.code, f"line {number}: {problem.message}", file, number))
            continue
        repeated = first_line_of.get(box.row())
        if repeated is not None:
            issues.append(Issue("label_duplicate_row", f"line {number}: duplicate of line {repeated} "
                                f"({_row_text(box, line, from_polygon)}); the repeat is ignored", file, number))
            continue
        first_line_of[box.row()] = number
        boxes.append(box)
        if from_polygon:
            polygon_lines.append(number)
    if polygon_lines:
        issues.append(_segments_issue(polygon_lines, len(rows), file))
    return boxes


def _row_text(box: Box, line: str, from_polygon: bool) -> str:
    if not from_polygon:
        return _shown(line.strip(), 3 * SHOWN_CHARACTERS)
    return f"a polygon whose bounding box is {write_label([box.row()]).decode().strip()}"


def _segments_issue(lines: list[int], row_count: int, file: str) -> Issue:
    named = ", ".join(map(str, lines[:LINES_NAMED])) + (", …" if len(lines) > LINES_NAMED else "")
    one = len(lines) == 1
    rows = f"{row_count} row{'' if row_count == 1 else 's'} " + (
        "is a polygon or an oriented box" if one else "are polygons or oriented boxes")
    return Issue(SEGMENTS_AS_BOXES,
                 f"line {lines[0]}: {len(lines)} of {rows} (line{'' if one else 's'} {named}: class x1 y1 … xn yn, "
                 "Ultralytics' segment and OBB rows); this index is detection-only and keeps each as its "
                 "bounding box (the min and max of its points); an edit of this label in the page or through "
                 "the API writes plain boxes: the points are not kept", file, lines[0])


def _parse_row(number: int, line: str) -> tuple[Box, bool]:
    """The row's box, and whether it is a polygon's bounding box."""
    values = line.split()
    if len(values) != len(COLUMNS):
        return _polygon_box(number, line, values), True
    numbers = [_parse_number(column, value) for column, value in zip(COLUMNS, values)]
    class_id = _class_id(values[0], numbers[0])
    for column, value, parsed in zip(COLUMNS[1:], values[1:], numbers[1:]):
        _check_coordinate(column, value, parsed)
    return Box(number, class_id, *numbers[1:]), False


def _polygon_box(number: int, line: str, values: list[str]) -> Box:
    """The bounding box of a polygon row `class x1 y1 ... xn yn`, rounded as the writer rounds."""
    _check_polygon_columns(values)
    numbers = _polygon_numbers(line, values)
    class_id = _class_id(values[0], numbers[0])
    if not -POLYGON_EDGE_TOLERANCE <= min(numbers[1:]) <= max(numbers[1:]) <= 1 + POLYGON_EDGE_TOLERANCE:
        for index, (value, parsed) in enumerate(zip(values[1:], numbers[1:]), start=1):
            _check_point_coordinate(_polygon_column(index), value, parsed)
    cx, w = _span("x", numbers[1::2], values[1::2])
    cy, h = _span("y", numbers[2::2], values[2::2])
    return Box(number, class_id, cx, cy, w, h)


def _polygon_numbers(line: str, values: list[str]) -> list[float]:
    """The row's numbers; rows of hundreds of points are common, so the checks run per value only when one fails."""
    if "_" not in line:
        try:
            numbers = list(map(float, values))
        except ValueError:
            numbers = []
        if numbers and all(map(math.isfinite, numbers)):
            return numbers
    return [_parse_number(_polygon_column(index), value) for index, value in enumerate(values)]


def _polygon_column(index: int) -> str:
    """The name of value `index` of a polygon row: class, x1, y1, x2, ..."""
    return "class" if index == 0 else f"{'xy'[(index - 1) % 2]}{(index + 1) // 2}"


def _check_point_coordinate(column: str, value: str, parsed: float) -> None:
    if not -POLYGON_EDGE_TOLERANCE <= parsed <= 1 + POLYGON_EDGE_TOLERANCE:
        raise _RowProblem("label_out_of_range", f"{column} is {_shown(value)}, outside [0, 1] (coordinates must "
                          f"be normalized by the image size; a polygon's points may pass the edge by "
                          f"{POLYGON_EDGE_TOLERANCE}, as Ultralytics allows)")


def _span(axis: str, coordinates: list[float], texts: list[str]) -> tuple[float, float]:
    """(centre, size) of the points along one axis, clipped to the image."""
    lowest, highest = min(coordinates), max(coordinates)
    low, high = max(lowest, 0.0), min(highest, 1.0)
    size = round(high - low, DECIMALS)
    if size <= 0:
        side = "width" if axis == "x" else "height"
        raise _RowProblem("label_nonpositive_size", f"the {len(coordinates)} points have no {side} inside the "
                          f"image ({axis} from {_shown(texts[coordinates.index(lowest)])} to "
                          f"{_shown(texts[coordinates.index(highest)])}); a box needs a width and height above 0")
    return round((low + high) / 2, DECIMALS), size


def _check_polygon_columns(values: list[str]) -> None:
    count = len(values)
    if count % 2 == 1 and count >= 1 + 2 * MIN_POLYGON_POINTS:
        return
    if count < len(COLUMNS):
        raise _RowProblem("label_columns", f"{count} values, expected 5 values: class cx cy w h")
    if count == len(COLUMNS) + 1:
        raise _RowProblem("label_columns", "6 values: a box with a confidence score (class cx cy w h conf, as "
                          "Ultralytics' predict writes with save_conf)? yolodrop reads 5 values, class cx cy w h: "
                          "remove the last column")
    raise _RowProblem("label_columns", f"{count} values: an even count is neither a box (5 values: class cx cy w h) "
                      "nor a polygon or oriented box (class then x y pairs: 7, 9, 11 … values); keypoint rows "
                      "(Ultralytics' pose labels) are not read, yolodrop indexes boxes")


def _parse_number(column: str, value: str) -> float:
    try:
        if "_" in value:  # Python accepts 1_000, YOLO loaders do not
            raise ValueError(value)
        parsed = float(value)
    except ValueError:
        raise _RowProblem("label_not_numeric", f"{column} value {_shown(value)!r} is not a number") from None
    if not math.isfinite(parsed):
        raise _RowProblem("label_not_finite", f"{column} value {_shown(value)!r} is not a finite number")
    return parsed


def _class_id(value: str, parsed: float) -> int:
    if parsed < 0:
        raise _RowProblem("label_class_negative", f"class id {_shown(value)} is negative")
    if not parsed.is_integer():
        raise _RowProblem("label_class_not_integer", f"class id {_shown(value)} is not a whole number")
    return int(parsed)


def _check_coordinate(column: str, value: str, parsed: float) -> None:
    if column in SIZE_COLUMNS and parsed <= 0:
        raise _RowProblem("label_nonpositive_size",
                          f"{column} is {_shown(value)}; a box needs a width and height above 0")
    if not 0 <= parsed <= 1:
        raise _RowProblem("label_out_of_range", f"{column} is {_shown(value)}, outside [0, 1] "
                          "(coordinates must be normalized by the image size)")


def _shown(text: str, limit: int = SHOWN_CHARACTERS) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def class_issues(boxes: list[Box], class_count: int | None, file: str) -> list[Issue]:
    if class_count is None:
        return []
    return [Issue("label_class_out_of_range", f"line {box.line}: class id {box.class_id} is not below "
                  f"the class count {class_count} (names in data.yaml)", file, box.line)
            for box in boxes if box.class_id >= class_count]


def boxes_in_range(boxes: list[Box], class_count: int | None) -> list[Box]:
    """The boxes whose class id is below class_count; all of them when the class count is unknown."""
    if class_count is None:
        return list(boxes)
    return [box for box in boxes if box.class_id < class_count]


def write_label(rows: Iterable[Row]) -> bytes:
    """The canonical label file of `rows`: `class cx cy w h` per line, each
    coordinate rounded to 6 decimals without trailing zeros, '\n' line ends.
    An empty list is an empty file: a background image."""
    return "".join(f"{int(row[0])} {' '.join(_number(value) for value in row[1:])}\n" for row in rows).encode()


def _number(value: float) -> str:
    text = f"{value:.{DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


# A box a person sent (common.domain.request_bodies.Box): its class by id or by name, then cx, cy, w, h.
SentBox = tuple[int | str, float, float, float, float]


def rows_from_boxes(boxes: Sequence[SentBox], class_names: list[str] | None) -> tuple[list[Row], list[str]]:
    """Boxes a person sent as label rows, checked by the same rules as a dropped label file: ([rows], [])
    when every box is sound, else ([], one problem per bad box, naming its position)."""
    shaped = [(position, _row_of(box, class_names)) for position, box in enumerate(boxes)]
    problems = [(position, row) for position, row in shaped if isinstance(row, str)]
    rows = [(position, row) for position, row in shaped if not isinstance(row, str)]
    parsed = parse_label(write_label(row for _, row in rows), "labels")
    issues = parsed.issues + class_issues(parsed.boxes, len(class_names) if class_names is not None else None,
                                          "labels")
    problems += [(rows[cast(int, issue.line) - 1][0], issue.message.split(": ", 1)[-1]) for issue in issues]
    if problems:
        return [], [f"labels[{position}]: {problem}" for position, problem in sorted(problems)]
    return [box.row() for box in parsed.boxes], []


def _row_of(box: SentBox, class_names: list[str] | None) -> Row | str:
    """The row of one box, or why its class is unknown."""
    named, *values = box
    if isinstance(named, int):
        return cast(Row, (named, *values))
    if class_names is None or named not in class_names:
        known = ", ".join(class_names) if class_names else "none yet (no data.yaml)"
        return f"unknown class {named!r}; the classes are {known}"
    return cast(Row, (class_names.index(named), *values))
