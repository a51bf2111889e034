import pytest

from common.domain import bounded_json


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_a_document_within_the_limit_is_parsed():
    assert bounded_json.loads('{"files": [{"path": "a", "tags": [1, [2]]}]}') == \
        {"files": [{"path": "a", "tags": [1, [2]]}]}
    assert bounded_json.loads(nested(bounded_json.MAX_DEPTH)) is not None


@pytest.mark.parametrize("levels", [bounded_json.MAX_DEPTH + 1, 5_000, 1_000_000])
def test_a_document_nested_deeper_is_refused_saying_so_never_a_recursion_error(levels):
    with pytest.raises(bounded_json.TooDeep, match=f"more than {bounded_json.MAX_DEPTH} levels deep"):
        bounded_json.loads(nested(levels))


def test_not_json_is_a_value_error_and_scalars_have_no_depth():
    with pytest.raises(ValueError):
        bounded_json.loads("{")
    assert bounded_json.depth_of("x", 10) == 0 and bounded_json.depth_of({"a": {}}, 10) == 2


def test_depth_counts_the_deepest_branch_only():
    wide = {"a": [1] * 10_000, "b": {"c": {"d": [[]]}}}
    assert bounded_json.depth_of(wide, 100) == 5
