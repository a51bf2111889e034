"""Duplicate groups: the entries of one dataset whose images have the same content.

A group is keyed by the image's SHA-256 and maps each member entry (by document
id) to its image path and split. When an entry's image changes, it leaves the
group of its old content and joins the group of its new one; every member of a
touched group then learns its duplicates again. Pure: the adapter reads the
groups and members, these functions say what they become.
"""
from __future__ import annotations

from typing import TypedDict

from common.domain.entries import Entry, ImageRecord
from common.domain.issues import Issue


class Member(TypedDict):
    path: str
    split: str | None


Members = dict[str, Member]  # entry document id -> member


def touched_groups(before: ImageRecord | None, after: ImageRecord | None) -> set[str]:
    """The content groups (sha256) an image change touches; none when the
    entry's membership stays the same (same content at the same path)."""
    old = before and (before["sha256"], before["path"])
    new = after and (after["sha256"], after["path"])
    if old == new:
        return set()
    return {image["sha256"] for image in (before, after) if image}


def move_member(groups: dict[str, Members], own_id: str, after: ImageRecord | None,
                split: str | None) -> dict[str, Members]:
    """The touched groups with the entry taken out of each and put into the
    group of its current content."""
    moved = {}
    for sha, members in groups.items():
        members = {member_id: m for member_id, m in members.items() if member_id != own_id}
        if after and after["sha256"] == sha:
            members[own_id] = {"path": after["path"], "split": split}
        moved[sha] = members
    return moved


def set_duplicates(entry: Entry, own_id: str, members: Members) -> None:
    """Record on `entry` the other entries with the same image content, and their issues."""
    others = [m["path"] for doc, m in members.items() if doc != own_id]
    image = entry["image"]
    entry["duplicates"] = sorted(others)
    entry["duplicate_issues"] = [i.to_dict() for i in duplicate_issues(image, members)] if others and image else []


def duplicate_issues(image: ImageRecord, members: Members) -> list[Issue]:
    path = image["path"]
    other_paths = sorted(m["path"] for m in members.values() if m["path"] != path)
    issues = [Issue("duplicate_image",
                    f"identical content (sha256 {image['sha256'][:12]}…) is also at {', '.join(other_paths)}",
                    path)]
    splits = sorted({m["split"] for m in members.values() if m["split"]})
    if len(splits) > 1:
        issues.append(Issue("split_leakage",
                            f"the same image is in splits {' and '.join(splits)}: "
                            "evaluation would measure images the model trained on", path))
    return issues
