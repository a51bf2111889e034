import threading

from common.domain.datayaml import MAX_CLASSES, MAX_DATA_YAML_BYTES, MAX_NAME_CHARS, MAX_YAML_ITEMS, parse_data_yaml

FILE = "datasets/d/data.yaml"


def parse(text: str):
    return parse_data_yaml(text.encode(), FILE)


def codes(result) -> list[str]:
    return [issue.code for issue in result.issues]


def test_names_list():
    result = parse("path: .\ntrain: images/train\nnames: [cat, dog, 3]\nnc: 3\n")
    assert result.names == ["cat", "dog", "3"]
    assert result.issues == []


def test_names_dict_with_int_and_string_keys():
    assert parse("names:\n  0: cat\n  1: dog\n").names == ["cat", "dog"]
    assert parse("names:\n  '1': dog\n  '0': cat\n").names == ["cat", "dog"]


def test_names_dict_with_gap_is_refused():
    result = parse("names:\n  0: cat\n  2: dog\n")
    assert result.names is None
    assert codes(result) == ["yaml_names_ids"]
    assert "missing [1]" in result.issues[0].message and "unexpected [2]" in result.issues[0].message


def test_names_dict_with_non_numeric_key():
    result = parse("names:\n  a: cat\n")
    assert result.names is None and codes(result) == ["yaml_names_ids"]


def test_names_of_wrong_type():
    for text in ("names: cat\n", "names: 3\n", "names: [[a, b]]\n"):
        result = parse(text)
        assert result.names is None and codes(result) == ["yaml_names_type"], text


def test_unsafe_tag_is_refused_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    result = parse(f"names: !!python/object/apply:os.system ['touch {marker}']\n")
    assert result.names is None
    assert codes(result) == ["yaml_unsafe_tag"]
    assert "python/object/apply:os.system" in result.issues[0].message
    assert not marker.exists()


def test_custom_tag_is_refused():
    assert codes(parse("names: !mytag [a]\n")) == ["yaml_unsafe_tag"]


def test_syntax_error_has_its_line():
    result = parse("path: .\nnames: [cat, dog\nnc: 2\n")
    assert result.names is None
    assert [(i.code, i.line) for i in result.issues] == [("yaml_syntax", 3)]
    assert result.issues[0].message.startswith("line 3: ")


def test_bad_indentation_line():
    result = parse("names:\n  - cat\n - dog\n")
    assert [(i.code, i.line) for i in result.issues] == [("yaml_syntax", 3)]


def test_not_utf8():
    result = parse_data_yaml(b"names: [caf\xe9]\n", FILE)
    assert result.names is None and codes(result) == ["yaml_not_utf8"]


def test_not_a_mapping():
    for text in ("", "- a\n- b\n", "just text\n"):
        result = parse(text)
        assert result.names is None and codes(result) == ["yaml_not_mapping"], text


def test_only_nc_gives_id_names():
    result = parse("nc: 3\n")
    assert result.names == ["0", "1", "2"]
    assert codes(result) == ["yaml_no_names"]
    assert "default to their ids" in result.issues[0].message


def test_no_names_and_no_nc():
    result = parse("train: images\n")
    assert result.names is None and codes(result) == ["yaml_no_names"]


def test_no_names_and_bad_nc():
    result = parse("nc: two\n")
    assert result.names is None and codes(result) == ["yaml_nc_type", "yaml_no_names"]


def test_duplicate_names():
    result = parse("names: [cat, dog, cat]\n")
    assert result.names == ["cat", "dog", "cat"]
    assert codes(result) == ["yaml_duplicate_names"]
    assert "cat" in result.issues[0].message


def test_nc_mismatch_and_type():
    mismatch = parse("names: [cat, dog]\nnc: 3\n")
    assert mismatch.names == ["cat", "dog"] and codes(mismatch) == ["yaml_nc_mismatch"]
    assert "nc is 3" in mismatch.issues[0].message and "2 classes" in mismatch.issues[0].message
    for nc in ("-1", "2.5", "true", "'2'"):
        wrong = parse(f"names: [cat, dog]\nnc: {nc}\n")
        assert wrong.names == ["cat", "dog"] and codes(wrong) == ["yaml_nc_type"], nc


def test_empty_names():
    for text in ("names: []\n", "names: {}\n"):
        result = parse(text)
        assert result.names == [] and codes(result) == ["yaml_no_classes"], text


def test_too_large():
    data = b"names: [a]\n" + b"#" * MAX_DATA_YAML_BYTES
    result = parse_data_yaml(data, FILE)
    assert result.names is None and codes(result) == ["yaml_too_large"]


def test_issue_file_is_set():
    assert parse("names: [a, a]\n").issues[0].file == FILE


def test_class_count_bomb_is_refused_before_any_name_is_built():
    result = parse("nc: 10000000000\n")  # 16 bytes asking for ten billion names
    assert result.names is None
    assert codes(result) == ["yaml_too_many_classes"]
    assert "10000000000" in result.issues[0].message and str(MAX_CLASSES) in result.issues[0].message


def test_class_count_cap_applies_to_lists_and_id_maps():
    at_cap = [f"c{i}" for i in range(MAX_CLASSES)]
    assert parse(f"names: [{', '.join(at_cap)}]\n").names == at_cap
    over = MAX_CLASSES + 1
    listed = parse(f"names: [{', '.join(f'c{i}' for i in range(over))}]\n")
    mapped = parse("names:\n" + "".join(f"  {i}: c{i}\n" for i in range(over)))
    for result in (listed, mapped):
        assert result.names is None and codes(result) == ["yaml_too_many_classes"]
        assert f"{over} classes" in result.issues[0].message
    assert parse(f"nc: {MAX_CLASSES}\n").names == [str(i) for i in range(MAX_CLASSES)]


def test_aliases_cannot_multiply_a_long_name():
    # Billion laughs with safe_load: aliases are shared references, so the parse stays small, but every name
    # would be the same 900 kB text once stored: the name length cap refuses it.
    long_text = "x" * 900_000
    result = parse(f"long: &a {long_text}\nnames: [{', '.join(['*a'] * 1000)}]\n")
    assert result.names is None and codes(result) == ["yaml_name_too_long"]
    assert f"{MAX_NAME_CHARS}" in result.issues[0].message


def test_nested_aliases_are_refused_without_expanding():
    laughs = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))
    result = parse(laughs + "names: *i\n")  # 9**9 leaves if expanded
    assert result.names is None and codes(result) == ["yaml_names_type"]


def test_deep_nesting_is_refused_even_on_a_small_thread_stack():
    # The local stack gives threads 2 MiB stacks (infra/local/stack.py): the refusal must come before the C stack
    # runs out there too.
    results = []
    threading.stack_size(2 * 1024 * 1024)
    try:
        thread = threading.Thread(target=lambda: results.append(parse("names: " + "[" * 20_000 + "]" * 20_000)))
        thread.start()
        thread.join()
    finally:
        threading.stack_size(0)
    assert codes(results[0]) == ["yaml_too_deep"]
    assert "nested too deeply" in results[0].issues[0].message


def test_a_file_of_very_many_items_is_refused_before_it_is_parsed():
    # 1 MiB of one-character items would take PyYAML's pure-Python loader 330 MB and 11 s.
    result = parse("x: [" + ",".join(["1"] * 500_000) + "]\nnames: [a]\n")
    assert result.names is None and codes(result) == ["yaml_too_complex"]
    assert str(MAX_YAML_ITEMS) in result.issues[0].message
    at_most = "names:\n" + "".join(f"  {i}: {'n' * 90}{i}\n" for i in range(MAX_CLASSES))  # the largest real file
    assert len(parse(at_most).names) == MAX_CLASSES
