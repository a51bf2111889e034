from common.domain import file_limits
from common.domain.datayaml import MAX_DATA_YAML_BYTES


def test_each_kind_has_its_own_cap():
    assert file_limits.size_refusal("label", file_limits.MAX_LABEL_BYTES) is None
    assert file_limits.size_refusal("data_yaml", MAX_DATA_YAML_BYTES) is None
    assert file_limits.size_refusal("image", file_limits.MAX_IMAGE_BYTES) is None
    refusal = file_limits.size_refusal("label", file_limits.MAX_LABEL_BYTES + 1)
    assert refusal.startswith("a label file may be at most 4194304 bytes (4 MiB)")
    assert str(file_limits.MAX_LABEL_BYTES + 1) in refusal
    assert "a data.yaml may be at most 1048576 bytes" in file_limits.size_refusal("data_yaml", 2 * 1024 ** 2)
    assert "an image may be at most 268435456 bytes (256 MiB)" in file_limits.size_refusal("image", 10 ** 12)


def test_an_archive_or_another_file_keeps_the_upload_limit_alone():
    assert file_limits.size_refusal("import", 10 ** 12) is None
    assert file_limits.size_refusal("other", 10 ** 12) is None
