"""imports/<dataset>.zip unpacks into datasets/<dataset>/ and indexes like a drop."""
import io
import zipfile

from infra.local.sample import sample_dataset
from tests.integration.helpers import issues_by_file, stats_when


def roboflow_style(name: str) -> str:
    """images/train/a.jpg -> train/images/a.jpg, as exports from labelling tools lay it out."""
    parts = name.split("/")
    if len(parts) > 2 and parts[0] in ("images", "labels"):
        split = "valid" if parts[1] == "val" else parts[1]
        return "/".join([split, parts[0], *parts[2:]])
    return name


def test_archive_import(bucket, api, dataset):
    sample = sample_dataset()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sample.files.items():
            archive.writestr(f"export/{roboflow_style(name)}", data)
        archive.writestr("export/../../escape.txt", b"nope")
    bucket.blob(f"imports/{dataset}.zip").upload_from_string(buffer.getvalue())
    stats_when(api, dataset, sample.expected)
    issues = issues_by_file(api, dataset)
    assert sorted(issues[f"imports/{dataset}.zip"]) == [("import_not_dataset_file", None),  # README.md
                                                          ("import_unsafe_path", None)]
    assert bucket.blob(f"datasets/{dataset}/images/val/zidane.jpg").exists()


def test_a_file_that_is_not_a_zip_is_an_issue(bucket, api, dataset):
    bucket.blob(f"imports/{dataset}.zip").upload_from_string(b"PK but not really")
    stats_when(api, dataset, {"issues": 1})
    assert issues_by_file(api, dataset) == {f"imports/{dataset}.zip": [("import_not_a_zip", None)]}
