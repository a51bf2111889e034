"""Ultralytics data.yaml: the class names, in id order. Loaded with yaml.safe_load only."""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TypeGuard, cast

import yaml

from common.domain.issues import Issue

MAX_DATA_YAML_BYTES = 1024 * 1024
# The most classes a dataset may have: over three times LVIS's 1203, the largest detection vocabulary in common
# use, and few enough that the index, the statistics and every class list stay small. Checked before any name is
# built: `nc: 10000000000` in 16 bytes would otherwise ask for ten billion names.
MAX_CLASSES = 4096
# The longest class name, in characters. Aliases let a 1 MiB file repeat one long text as every name; this keeps
# MAX_CLASSES names within what a dataset's document holds.
MAX_NAME_CHARS = 100
# PyYAML's pure-Python loader (the C one crashes on deep nesting) takes about 650 bytes and 20 us a node: a 1 MiB
# file of 500,000 tiny items would take 330 MB and 11 s. Items (an upper bound of the nodes: commas, colons,
# dashes, brackets, lines) are counted first; a data.yaml of MAX_CLASSES names has about 9,000.
MAX_YAML_ITEMS = 50_000
# Parses at once in a process (the API's threads, ingest's): each takes up to about 35 MB at MAX_YAML_ITEMS.
_parses = threading.BoundedSemaphore(2)
_ITEM_MARKS = ",:-[{\n"
_SCALAR_TYPES = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class DataYaml:
    names: list[str] | None  # class names in id order, None when they can't be determined
    issues: list[Issue]
    # what train, val and test say (folders, .txt lists, lists), and path: (what they are relative to)
    splits: dict[str, Any] = field(default_factory=dict)


class _Refused(Exception):
    """A problem that leaves the class names unknown."""

    def __init__(self, code: str, message: str, line: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line


def parse_data_yaml(data: bytes, file: str) -> DataYaml:
    issues: list[Issue] = []
    try:
        document = _load_mapping(data)
        names = _class_names(document, issues, file)
    except _Refused as refused:
        return DataYaml(None, issues + [Issue(refused.code, refused.message, file, refused.line)])
    _check_names(names, document, issues, file)
    return DataYaml(names, issues, {key: document[key] for key in ("path", "train", "val", "test") if key in document})


def readable_mapping(data: bytes) -> dict[str, Any] | None:
    """The document of a data.yaml within every limit here, when it is a mapping; None otherwise."""
    try:
        return _load_mapping(data)
    except _Refused:
        return None


def size_issue(size: int, file: str) -> Issue | None:
    """The issue of a data.yaml of `size` bytes, if it is too large to read."""
    if size <= MAX_DATA_YAML_BYTES:
        return None
    return Issue("yaml_too_large", f"data.yaml is {size} bytes, over the {MAX_DATA_YAML_BYTES} byte limit", file)


def _load_mapping(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_DATA_YAML_BYTES:
        raise _Refused("yaml_too_large", cast(Issue, size_issue(len(data), "")).message)  # over: an issue
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _Refused("yaml_not_utf8", f"data.yaml is not UTF-8 text (byte {error.start} is "
                       f"0x{data[error.start]:02x})") from None
    items = sum(text.count(mark) for mark in _ITEM_MARKS)
    if items > MAX_YAML_ITEMS:
        raise _Refused("yaml_too_complex", f"data.yaml has about {items} items (commas, colons, dashes, brackets, "
                       f"lines), over the {MAX_YAML_ITEMS} read: keep it to the keys Ultralytics reads "
                       "(path, train, val, test, names)")
    with _parses:
        document = _safe_load(text)
    if not isinstance(document, dict):
        seen = "empty" if document is None else f"a {type(document).__name__}"
        raise _Refused("yaml_not_mapping", f"data.yaml must be a mapping with a 'names' key, but it is {seen}")
    return document


def _safe_load(text: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.constructor.ConstructorError as error:
        if "could not determine a constructor" in str(error.problem):
            line = _line_of(error)
            where = f"line {line}: " if line is not None else ""
            raise _Refused("yaml_unsafe_tag", f"{where}data.yaml uses the tag {_tag_of(error)}, which is not "
                           "allowed (only plain YAML is loaded, nothing is executed)", line) from None
        raise _Refused("yaml_syntax", _syntax_message(error), _line_of(error)) from None
    except yaml.YAMLError as error:
        raise _Refused("yaml_syntax", _syntax_message(error), _line_of(error)) from None
    except RecursionError:
        raise _Refused("yaml_too_deep", "data.yaml is nested too deeply to read: keep it to the flat keys "
                       "Ultralytics reads (path, train, val, test, names)") from None


def _tag_of(error: yaml.constructor.ConstructorError) -> str:
    problem = str(error.problem)
    return problem.split("tag", 1)[1].strip() if "tag" in problem else "(unknown tag)"


def _line_of(error: yaml.YAMLError) -> int | None:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    return mark.line + 1 if mark is not None else None


def _syntax_message(error: yaml.YAMLError) -> str:
    line = _line_of(error)
    problem = getattr(error, "problem", None) or str(error)
    where = f"line {line}: " if line is not None else ""
    return f"{where}data.yaml is not valid YAML: {problem}"


def _class_names(document: dict[str, Any], issues: list[Issue], file: str) -> list[str]:
    if "names" not in document:
        return _names_from_nc(document, issues, file)
    names = document["names"]
    if isinstance(names, (list, dict)):
        _check_class_count(len(names), "'names' lists")
    if isinstance(names, list):
        return [_name_text(index, name) for index, name in enumerate(names)]
    if isinstance(names, dict):
        return _names_from_id_map(names)
    raise _Refused("yaml_names_type", f"'names' must be a list or an id: name mapping, "
                   f"but it is a {type(names).__name__}")


def _names_from_nc(document: dict[str, Any], issues: list[Issue], file: str) -> list[str]:
    nc = document.get("nc")
    if not _is_count(nc):
        if "nc" in document:
            issues.append(Issue("yaml_nc_type", f"'nc' must be a whole number >= 0, but it is {nc!r}", file))
        raise _Refused("yaml_no_names", "data.yaml has no 'names' (and no usable 'nc'), so the classes are unknown")
    _check_class_count(nc, "nc is")
    issues.append(Issue("yaml_no_names", f"data.yaml has no 'names', only nc: {nc}; "
                        "the class names default to their ids", file))
    return [str(class_id) for class_id in range(nc)]


def _check_class_count(count: int, what: str) -> None:
    if count > MAX_CLASSES:
        raise _Refused("yaml_too_many_classes", f"{what} {count} classes; a dataset may have at most "
                       f"{MAX_CLASSES}: list the classes the labels use (ids 0..n-1)")


def _name_text(class_id: object, name: object) -> str:
    if not isinstance(name, _SCALAR_TYPES):
        raise _Refused("yaml_names_type", f"the name of class {class_id} is a {type(name).__name__}, not text")
    text = name if isinstance(name, str) else str(name)
    if len(text) > MAX_NAME_CHARS:
        raise _Refused("yaml_name_too_long", f"the name of class {class_id} has {len(text)} characters; "
                       f"the limit is {MAX_NAME_CHARS}")
    return text


def _names_from_id_map(names: dict[str, Any]) -> list[str]:
    by_id = {_class_id_key(key): name for key, name in names.items()}
    expected = set(range(len(names)))
    if set(by_id) != expected:
        unexpected = sorted(set(by_id) - expected)
        missing = sorted(expected - set(by_id))
        raise _Refused("yaml_names_ids", f"'names' ids must be exactly 0..{len(names) - 1}: "
                       f"missing {missing}, unexpected {unexpected}")
    return [_name_text(class_id, by_id[class_id]) for class_id in range(len(names))]


def _class_id_key(key: object) -> int:
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and key.strip().isdigit():
        return int(key)
    raise _Refused("yaml_names_ids", f"'names' key {key!r} is not a class id (a whole number)")


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_names(names: list[str], document: dict[str, Any], issues: list[Issue], file: str) -> None:
    if not names:
        issues.append(Issue("yaml_no_classes", "data.yaml defines no classes ('names' is empty)", file))
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        issues.append(Issue("yaml_duplicate_names", f"class names appear more than once: {duplicates}", file))
    if "nc" in document and "names" in document:
        _check_nc(document["nc"], len(names), issues, file)


def _check_nc(nc: object, name_count: int, issues: list[Issue], file: str) -> None:
    if not _is_count(nc):
        issues.append(Issue("yaml_nc_type", f"'nc' must be a whole number >= 0, but it is {nc!r}", file))
    elif nc != name_count:
        issues.append(Issue("yaml_nc_mismatch", f"nc is {nc} but 'names' lists {name_count} classes; "
                            "the names are used", file))
