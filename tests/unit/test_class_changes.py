"""Class changes: remap plans, label rewriting line by line, data.yaml with new names."""
import pytest

from common.domain.class_changes import names_problem, plan_remap, remap_label_text, with_names
from common.domain.datayaml import parse_data_yaml

NAMES = ["person", "bus", "tie", "car"]


def test_rename_keeps_ids():
    remap = plan_remap(NAMES, {"bus": "coach"})
    assert remap.names == ["person", "coach", "tie", "car"] and remap.ids == {0: 0, 1: 1, 2: 2, 3: 3}


def test_merge_delete_and_their_ids():
    remap = plan_remap(NAMES, {"car": "bus", "tie": None})
    assert remap.names == ["person", "bus"]
    assert remap.ids == {0: 0, 1: 1, 2: None, 3: 1}


def test_reorder_by_the_given_order():
    remap = plan_remap(NAMES, {"tie": "tie"}, order=["car", "tie", "bus", "person"])
    assert remap.ids == {0: 3, 1: 2, 2: 1, 3: 0}


@pytest.mark.parametrize("mapping, order, reason", [
    ({}, None, "at least one class"), ({"giraffe": "x"}, None, "does not have: giraffe"),
    ({"bus": ""}, None, "new name or to null"), ({"bus": 3}, None, "new name or to null"),
    ({"bus": "coach"}, ["person", "coach"], "exactly the classes"),
])
def test_bad_remaps_say_why(mapping, order, reason):
    with pytest.raises(ValueError, match=reason):
        plan_remap(NAMES, mapping, order)


def test_label_lines_are_remapped_and_everything_else_kept_verbatim():
    text = "3 0.5 0.5 0.1 0.1\n2 0.1 0.1 0.1 0.1\r\n  1 0.2 0.2 0.1 0.1\nnot a row\n0 0.5 0.5 0.1\n9 0.5 0.5 0.1 0.1\n"
    assert remap_label_text(text, {0: 0, 1: 1, 2: None, 3: 1}) == \
        "1 0.5 0.5 0.1 0.1\n  1 0.2 0.2 0.1 0.1\nnot a row\n0 0.5 0.5 0.1\n9 0.5 0.5 0.1 0.1\n"
    assert remap_label_text("0 0.5 0.5 0.1 0.1\n", {0: 0}) is None
    assert remap_label_text("", {0: 1}) is None


def test_new_names_keep_the_rest_of_data_yaml():
    current = b"path: /data\ntrain: images/train\nnames:\n  0: a\n  1: b\nnc: 2\n"
    written = with_names(current, ["a", "b", "c"])
    parsed = parse_data_yaml(written, "data.yaml")
    assert parsed.names == ["a", "b", "c"] and parsed.issues == []
    assert b"train: images/train" in written and b"nc: 3" in written
    assert parse_data_yaml(with_names(b"::: not yaml", ["x"]), "d").names == ["x"]


def test_names_problems():
    assert names_problem(["a", "b"]) is None
    assert "unique" in names_problem(["a", "a"]) and "list" in names_problem([])
    assert "non-empty" in names_problem(["a", " b"]) and "list" in names_problem("a")
