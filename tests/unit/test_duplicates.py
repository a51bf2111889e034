"""Duplicate groups move with an entry's image content."""
from common.domain.duplicates import move_member, touched_groups


def image(sha: str, path: str) -> dict:
    return {"sha256": sha, "path": path}


def test_unchanged_membership_touches_nothing():
    assert touched_groups(image("a", "p"), image("a", "p")) == set()
    assert touched_groups(None, None) == set()


def test_new_content_touches_old_and_new_groups():
    assert touched_groups(image("a", "p"), image("b", "p")) == {"a", "b"}
    assert touched_groups(None, image("b", "p")) == {"b"}
    assert touched_groups(image("a", "p"), None) == {"a"}
    assert touched_groups(image("a", "p"), image("a", "q")) == {"a"}  # same content, new path


def test_member_moves_between_groups():
    groups = {"a": {"me": {"path": "p", "split": "train"}, "x": {"path": "x", "split": "val"}},
              "b": {"y": {"path": "y", "split": None}}}
    moved = move_member(groups, "me", image("b", "p2"), "test")
    assert moved == {"a": {"x": {"path": "x", "split": "val"}},
                     "b": {"y": {"path": "y", "split": None}, "me": {"path": "p2", "split": "test"}}}
    assert "me" in groups["a"]  # the input is not changed


def test_deleted_image_leaves_its_group_empty():
    assert move_member({"a": {"me": {"path": "p", "split": None}}}, "me", None, None) == {"a": {}}
