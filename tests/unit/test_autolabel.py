"""Auto-labelling's pure rules: class mapping by name, proposals from boxes, what accepting writes,
the entry's derived has_proposals, the job view, and request checks."""
from __future__ import annotations

import pytest

from common.domain import dataset_jobs, entries, proposals
from common.domain.labels import parse_label

BOX = {"class_id": 1, "confidence": 0.9, "cx": 0.5, "cy": 0.4, "w": 0.2, "h": 0.1}


def test_classes_map_by_name_and_those_the_dataset_lacks_are_named():
    mapping, dropped = proposals.class_map(["red", "green", "blue"], ["blue", "yellow", "red"])
    assert mapping == {0: 2, 2: 0}
    assert dropped == ["green"]


@pytest.mark.parametrize("dataset_names", [["cat", "dog"], [], None])
def test_a_model_sharing_no_class_cannot_label_and_the_reason_names_both_lists(dataset_names):
    with pytest.raises(proposals.CannotLabel) as refused:
        proposals.class_map(["red", "green"], dataset_names)
    assert "['red', 'green']" in str(refused.value) and str(dataset_names or []) in str(refused.value)


def test_proposals_take_the_dataset_class_ids_and_count_what_they_drop():
    boxes = [BOX, {**BOX, "class_id": 0}, {**BOX, "class_id": 1, "w": 0.0}]
    kept, dropped = proposals.from_boxes(boxes, {1: 4})
    assert kept == [{**BOX, "class_id": 4}]
    assert dropped == 2  # a class the dataset lacks, and a box with no width


def test_accepting_keeps_only_proposals_reaching_the_confidence():
    rows = proposals.accepted_rows([BOX, {**BOX, "confidence": 0.3}], 0.5)
    assert rows == [(1, 0.5, 0.4, 0.2, 0.1)]
    with pytest.raises(proposals.NothingToAccept):
        proposals.accepted_rows([BOX], 0.95)
    with pytest.raises(proposals.NothingToAccept):
        proposals.accepted_rows(None, 0.0)


def test_without_a_label_file_the_rows_are_written_alone():
    data = proposals.label_file([(1, 0.5, 0.4, 0.2, 0.1)], None, merge=False, path="x.txt")
    assert data == b"1 0.5 0.4 0.2 0.1\n"


def test_rows_that_coincide_once_written_are_written_once():
    rows = [(0, 0.5, 0.5, 1.0, 1.0), (0, 0.5000001, 0.5, 1.0, 1.0), (1, 0.5, 0.5, 1.0, 1.0)]
    assert proposals.label_file(rows, None, merge=False, path="x.txt") == b"0 0.5 0.5 1 1\n1 0.5 0.5 1 1\n"


def test_a_label_file_is_never_replaced_unless_merging():
    with pytest.raises(proposals.HasLabels):
        proposals.label_file([(1, 0.5, 0.4, 0.2, 0.1)], b"0 0.1 0.1 0.1 0.1\n", merge=False, path="x.txt")
    with pytest.raises(proposals.HasLabels):  # an empty file is a person's "background": also kept
        proposals.label_file([(1, 0.5, 0.4, 0.2, 0.1)], b"", merge=False, path="x.txt")


def test_merging_appends_the_new_rows_and_keeps_every_line_of_the_file():
    existing = b"0 0.1 0.1 0.1 0.1\nnot a row\n1 0.5 0.4 0.2 0.1"
    merged = proposals.label_file([(1, 0.5, 0.4, 0.2, 0.1), (2, 0.3333333, 0.3, 0.2, 0.2)], existing, True, "x.txt")
    assert merged == existing + b"\n2 0.333333 0.3 0.2 0.2\n"
    assert len(parse_label(merged, "x.txt").boxes) == 3  # nothing duplicated


def test_the_entry_derives_has_proposals_and_keeps_the_proposals_through_a_rederive():
    entry = entries.new_entry("labels/a", None)
    entries.set_part(entry, "image", {"path": "datasets/d/images/a.jpg", "generation": 3, "sha256": "ab" * 32}, [])
    assert entries.derive(entry, 2)["has_proposals"] is False
    entry.update(proposals.entry_fields([{**BOX, "class_id": 0}], "model-1", "autolabel-1", 3))
    derived = entries.derive(entry, 2)
    assert derived["has_proposals"] is True and derived["proposals"] == [{**BOX, "class_id": 0}]
    entry.update(proposals.entry_fields([], "model-1", "autolabel-1", 3))  # the model found nothing
    assert entries.derive(entry, 2)["has_proposals"] is False
    assert entries.derive({**entry, **proposals.cleared_fields()}, 2)["has_proposals"] is False


def test_the_image_view_names_the_classes_of_the_proposals():
    entry = proposals.entry_fields([BOX, {**BOX, "class_id": 7}], "model-1", "autolabel-1", 3)
    view = proposals.view(entry, ["a", "b"])
    assert [p["class_name"] for p in view["proposals"]] == ["b", None]
    assert view["proposal_model"] == "model-1"
    assert proposals.view({}, None) == {"proposals": [], "proposal_model": None}


def test_the_job_view_has_the_shape_the_issue_asks_for():
    job = dataset_jobs.new_job("autolabel-1", "d", dataset_jobs.AUTOLABEL, 1.0, "u", model_id="m", conf=0.25,
                               iou=0.7, images="unlabeled")
    job["files_total"] = 45
    failed = [{"image": "labels/x", "reason": "not an image"}]
    view = dataset_jobs.autolabel_view(job, 40, {"boxes": 12, "dropped": 1, "failures": 1}, failed)
    assert {"id", "dataset", "model_id", "status", "images_total", "images_done", "boxes", "failed",
            "created_at", "finished_at"} <= set(view)
    assert (view["images_total"], view["images_done"], view["boxes"], view["failed"]) == (45, 40, 12, failed)


def test_every_kind_counts_at_most_three_figures():
    """One aggregation holds 5: the chunk count, the files, and a kind's own counts."""
    assert set(dataset_jobs.COUNTED) == set(dataset_jobs.KINDS)
    assert all(len(counted) <= 3 for counted in dataset_jobs.COUNTED.values())
