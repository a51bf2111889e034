import pytest

from common.domain import layout
from common.domain.layout import ObjectRole, classify, doc_id, label_path_for, thumbnail_path


@pytest.mark.parametrize("name, role", [
    ("datasets/d/images/train/a.jpg", ObjectRole("image", "d", "labels/train/a", "train", "jpg")),
    ("datasets/d/labels/train/a.txt", ObjectRole("label", "d", "labels/train/a", "train", "txt")),
    ("datasets/d/images/a.PNG", ObjectRole("image", "d", "labels/a", None, "png")),
    ("datasets/d/labels/a.txt", ObjectRole("label", "d", "labels/a", None, "txt")),
    ("datasets/d/images/val/sub/x.y.webp", ObjectRole("image", "d", "labels/val/sub/x.y", "val", "webp")),
    ("datasets/d/images/train.jpg", ObjectRole("image", "d", "labels/train", None, "jpg")),
    ("datasets/d/images/other/a.jpg", ObjectRole("image", "d", "labels/other/a", None, "jpg")),
    ("datasets/d/extra/images/test/a.tif", ObjectRole("image", "d", "extra/labels/test/a", "test", "tif")),
    ("datasets/images/images/train/a.jpg", ObjectRole("image", "images", "labels/train/a", "train", "jpg")),
    ("datasets/d/data.yaml", ObjectRole("data_yaml", "d", None, None, "yaml")),
    ("datasets/d/data.yml", ObjectRole("data_yaml", "d", None, None, "yml")),
    ("datasets/d/sub/data.yaml", ObjectRole("other", "d", None, None, "yaml")),
    ("datasets/d/images/train/a.gif", ObjectRole("other", "d", None, None, "gif")),
    ("datasets/d/images/train/notes.txt", ObjectRole("other", "d", None, None, "txt")),
    ("datasets/d/labels/train/a.json", ObjectRole("other", "d", None, None, "json")),
    ("datasets/d/a.jpg", ObjectRole("other", "d", None, None, "jpg")),
    ("datasets/d/README", ObjectRole("other", "d", None, None, None)),
    ("datasets/my set/images/a.jpg", ObjectRole("invalid_dataset", None, None, None, "jpg")),
    ("datasets/../images/a.jpg", ObjectRole("invalid_dataset", None, None, None, "jpg")),
    ("datasets//images/a.jpg", ObjectRole("invalid_dataset", None, None, None, "jpg")),
    ("imports/coco8.zip", ObjectRole("import", "coco8", None, None, "zip")),
    # Labelling-tool exports dropped as they are: the split folder before images/ (valid means val),
    # read as the same tree inside an archive is read.
    ("datasets/d/train/images/a.jpg", ObjectRole("image", "d", "train/labels/a", "train", "jpg")),
    ("datasets/d/valid/images/a.jpg", ObjectRole("image", "d", "valid/labels/a", "val", "jpg")),
    ("datasets/d/valid/labels/a.txt", ObjectRole("label", "d", "valid/labels/a", "val", "txt")),
    ("datasets/d/images/valid/a.jpg", ObjectRole("image", "d", "labels/valid/a", "val", "jpg")),
    ("imports/bad name.zip", ObjectRole("invalid_dataset", None, None, None, "zip")),
])
def test_classify(name, role):
    assert classify(name) == role


@pytest.mark.parametrize("name", [
    "derived/thumbnails/d/abc.jpg", "other/a.jpg", "datasets/", "datasets/d/", "datasets/d/images/",
    "datasets/d", "imports/", "imports/readme.txt", "imports/sub/x.zip", "a.jpg", "",
])
def test_ignored(name):
    assert classify(name).kind == "ignored"


@pytest.mark.parametrize("name", ["datasets/d/images/a.jpg", "datasets/d/data.yaml", "datasets/d/notes.md",
                                  "imports/d.zip", "datasets/my set/images/a.jpg", "datasets/d/", "other/a.jpg"])
def test_an_object_of_a_dataset_has_its_role_with_the_dataset_named_and_no_other_has_one(name):
    role = classify(name)
    located = layout.in_dataset(role)
    if role.kind in ("ignored", "invalid_dataset"):
        assert located is None
    else:
        assert located == layout.DatasetObjectRole(role.kind, "d", role.key, role.split, role.extension)


def test_image_and_label_meet():
    image = classify("datasets/d/images/train/000123.jpeg")
    label = classify("datasets/d/labels/train/000123.txt")
    assert image.key == label.key and image.split == label.split == "train"


@pytest.mark.parametrize("image, label", [
    ("datasets/d/images/train/a.jpg", "datasets/d/labels/train/a.txt"),
    ("/data/images/images/a.b.png", "/data/images/labels/a.b.txt"),
    ("datasets/d/images/a", "datasets/d/labels/a.txt"),
    ("images/a.jpg", "images/a.txt"),
])
def test_label_path_for(image, label):
    assert label_path_for(image) == label


@pytest.mark.parametrize("key, expected", [
    ("labels/train/a", "labels%2Ftrain%2Fa"),
    ("100%/x", "100%25%2Fx"),
    (".", "%2E"),
    ("..", "%2E%2E"),
    ("__x__", "%5F_x__"),
    ("a.b", "a.b"),
    ("_x", "_x"),
])
def test_doc_id_encodes(key, expected):
    assert doc_id(key) == expected
    assert "/" not in doc_id(key)


def test_doc_ids_of_distinct_tricky_keys_are_distinct():
    keys = ["%2F", "/", "a%25b/c", "a%b/c", "labels/ü/ä", "%", "..x", "%2E", ".", "__x", "%5F_x"]
    assert len({doc_id(key) for key in keys}) == len(keys)


def test_doc_id_too_long_or_empty():
    with pytest.raises(ValueError):
        doc_id("/" * 600)
    with pytest.raises(ValueError):
        doc_id("")
    assert len(doc_id("a" * 1500)) == 1500


def test_thumbnail_path():
    assert thumbnail_path("d", "ab12") == "derived/thumbnails/d/ab12.jpg"


def test_every_derived_name_is_under_derived_and_never_ingested():
    names = [thumbnail_path("d", "ab"), layout.training_manifest("job-1"), layout.training_cancel_marker("job-1"),
             layout.training_runs("job-1") + "0", layout.training_checkpoint("job-1", "last.pt"),
             layout.training_weights("job-1", "best.onnx")]
    assert all(name.startswith("derived/") and classify(name).kind == "ignored" for name in names)


def test_dataset_names_round_trip():
    name = layout.dataset_object("d", "images/train/a.jpg")
    assert name == "datasets/d/images/train/a.jpg" and layout.dataset_relative(name, "d") == "images/train/a.jpg"
    assert classify(layout.import_archive("d")).kind == "import"


@pytest.mark.parametrize("relative", ["images/a.jpg", "labels/train/a.txt", "data.yaml", "train/images/b.png"])
def test_uploads_of_dataset_files_are_placed_in_the_dataset(relative):
    assert layout.upload_object("d", relative) == f"datasets/d/{relative}"


@pytest.mark.parametrize("relative, reason", [
    ("../e/images/a.jpg", "inside the dataset"), ("/images/a.jpg", "inside the dataset"),
    ("images/../../e/a.jpg", "inside the dataset"), ("images//a.jpg", "inside the dataset"),
    ("images\\a.jpg", "inside the dataset"), ("", "inside the dataset"),
    ("images/a.exe", "only images"), ("notes.md", "only images"), ("images/" + "a" * 1100 + ".jpg", "too long"),
])
def test_uploads_outside_the_dataset_or_of_other_files_are_refused(relative, reason):
    with pytest.raises(ValueError, match=reason):
        layout.upload_object("d", relative)


@pytest.mark.parametrize("name", ["__x__", "____", "__.__", "__x", ".", "..", "", "a" * (layout.MAX_DATASET_NAME + 1),
                                  "a/b", "a b", "é"])
def test_dataset_names_firestore_reserves_or_cannot_hold_are_refused(name):
    assert not layout.is_valid_dataset_name(name)
    if name and "/" not in name and " " not in name and name != "é":
        assert layout.classify(f"imports/{name}.zip").kind == "invalid_dataset"


@pytest.mark.parametrize("name", ["x__", "_x_", "_x__", "a" * layout.MAX_DATASET_NAME, "v1.2-final_b"])
def test_dataset_names_near_the_reserved_ones_are_valid_document_ids(name):
    assert layout.is_valid_dataset_name(name) and layout.is_document_id(name)
