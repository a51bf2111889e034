from common.domain.datayaml import MAX_DATA_YAML_BYTES, parse_data_yaml

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
