"""Changing a dataset's classes: new names, and remaps that merge, delete or
reorder classes by rewriting label files. Pure.

A remap rewrites a label file line by line: a line whose class id changes gets
the new id (or goes, when its class is deleted); every other line, a malformed
one included, stays exactly as it was, so a remap never loses what a person
wrote, even what ingest could not read.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import yaml

from common.domain.datayaml import MAX_CLASSES, MAX_NAME_CHARS, readable_mapping
_CLASS_ID = re.compile(r"^(\s*)([0-9]+)(?=\s)")


@dataclass(frozen=True)
class Remap:
    names: list[str]                 # the classes afterwards, in id order
    ids: dict[int, int | None]       # old id -> new id; None: the class is deleted


def names_problem(names: object) -> str | None:
    """None when `names` can be a dataset's classes; else why not."""
    if not isinstance(names, list) or not 0 < len(names) <= MAX_CLASSES:
        return f"names must be a list of 1 to {MAX_CLASSES} class names"
    if not all(isinstance(name, str) and name.strip() == name and name for name in names):
        return "every name must be non-empty text without leading or trailing spaces"
    if any(len(name) > MAX_NAME_CHARS for name in names):
        return f"every name must have at most {MAX_NAME_CHARS} characters"
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    return f"names must be unique; repeated: {', '.join(repeated)}" if repeated else None


def plan_remap(names: list[str], mapping: dict[str, Any], order: list[str] | None = None) -> Remap:
    """The remap of `names` by `mapping` ({old name: new name, or None to delete});
    classes not named keep their name. Two classes mapped to one name merge. The
    new order is `order` when given, else the order in which the new names first
    appear. Raises ValueError saying what is wrong."""
    if not isinstance(mapping, dict) or not mapping:
        raise ValueError("map must name at least one class: {\"old name\": \"new name\" or null}")
    unknown = sorted(set(mapping) - set(names))
    if unknown:
        raise ValueError(f"map names classes the dataset does not have: {', '.join(unknown)}")
    if not all(target is None or (isinstance(target, str) and target.strip()) for target in mapping.values()):
        raise ValueError("each class maps to a new name or to null (deleted)")
    targets = [mapping.get(name, name) for name in names]
    kept = list(dict.fromkeys(target for target in targets if target is not None))
    new_names = _ordered(kept, order)
    return Remap(new_names, {old: (new_names.index(t) if t is not None else None) for old, t in enumerate(targets)})


def _ordered(kept: list[str], order: list[str] | None) -> list[str]:
    if order is None:
        return kept
    if not isinstance(order, list) or sorted(map(str, order)) != sorted(kept) or len(set(order)) != len(order):
        raise ValueError(f"names must list exactly the classes after the remap, once each: {', '.join(kept)}")
    return list(order)


def remap_label_text(text: str, ids: dict[int, int | None]) -> str | None:
    """The label text with class ids remapped; None when nothing changes."""
    lines = text.splitlines(keepends=True)
    out = [_remapped_line(line, ids) for line in lines]
    return None if out == lines else "".join(line for line in out if line is not None)


def _remapped_line(line: str, ids: dict[int, int | None]) -> str | None:
    match = _CLASS_ID.match(line)
    if match is None or int(match[2]) not in ids:
        return line
    new = ids[int(match[2])]
    return None if new is None else f"{match[1]}{new}{line[match.end():]}"


def with_names(current: bytes | None, names: list[str]) -> bytes:
    """data.yaml with `names`, keeping the rest of the current file's keys
    (train, val, path...) when it is a readable mapping."""
    document = readable_mapping(current) if current else None  # within data.yaml's limits, or replaced whole
    document = dict(document) if isinstance(document, dict) else {}
    document["names"] = dict(enumerate(names))
    if "nc" in document:
        document["nc"] = len(names)
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode()
