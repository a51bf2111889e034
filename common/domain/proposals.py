"""Auto-labelling: a model's boxes as proposals a person reviews. Pure.

A model's classes map onto the dataset's by name; a box of a class the dataset
lacks is dropped (and counted). Proposals live in the index entry beside the
label, never in the label file, until a person accepts them: then they become
YOLO rows, written alone or, when asked, after the rows the label already has.
"""
from __future__ import annotations

from common.domain.jobs import CannotRun
from common.domain.labels import Row, parse_label, write_label
from typing import Any

UNLABELED, ALL = "unlabeled", "all"
SCOPES = (UNLABELED, ALL)


class CannotLabel(CannotRun):
    """An auto-labelling job cannot run: no such model, no ONNX weights, or no class shared with the dataset."""


class NothingToAccept(ValueError):
    """No proposal of the image reaches the confidence asked for."""


class HasLabels(ValueError):
    """The image has a label file and merging was not asked for."""


def class_map(model_names: list[str], dataset_names: list[str] | None) -> tuple[dict[int, int], list[str]]:
    """({model class id: dataset class id}, the model's class names the dataset lacks)."""
    dataset_names = dataset_names or []
    mapping = {model_id: dataset_names.index(name) for model_id, name in enumerate(model_names)
               if name in dataset_names}
    if not mapping:
        raise CannotLabel(f"the model's classes {model_names} share no name with the dataset's classes "
                            f"{dataset_names}")
    return mapping, [name for name in model_names if name not in dataset_names]


def from_boxes(boxes: list[dict[str, Any]], mapping: dict[int, int]) -> tuple[list[dict[str, Any]], int]:
    """(proposals in the dataset's class ids, how many boxes were dropped) from predicted boxes
    (common.domain.prediction.box_view: class_id of the model, confidence, normalized cx cy w h)."""
    kept = [{"class_id": mapping[box["class_id"]], "confidence": box["confidence"],
             "cx": box["cx"], "cy": box["cy"], "w": box["w"], "h": box["h"]}
            for box in boxes if box["class_id"] in mapping and box["w"] > 0 and box["h"] > 0]
    return kept, len(boxes) - len(kept)


def entry_fields(proposals: list[dict[str, Any]], model_id: str, job_id: str, image_generation: int) -> dict[str, Any]:
    """What an entry holds of one auto-labelling of its image."""
    return {"proposals": proposals, "proposal_model": model_id, "proposal_job": job_id,
            "proposal_image_generation": image_generation, "has_proposals": bool(proposals)}


def cleared_fields() -> dict[str, Any]:
    return {"proposals": None, "proposal_model": None, "proposal_job": None, "proposal_image_generation": None,
            "has_proposals": False}


def accepted_rows(proposals: list[dict[str, Any]] | None, min_confidence: float) -> list[Row]:
    """The YOLO rows of the proposals (None: an entry that has none) at or above `min_confidence`;
    NothingToAccept when none is."""
    rows = [(p["class_id"], p["cx"], p["cy"], p["w"], p["h"]) for p in proposals or []
            if p["confidence"] >= min_confidence]
    if not rows:
        raise NothingToAccept(f"no proposal has a confidence of at least {min_confidence}")
    return rows


def label_file(rows: list[Row], existing: bytes | None, merge: bool, path: str) -> bytes:
    """The label file that accepting `rows` writes: the rows alone where there is no label file;
    where there is one, its own text with the rows it does not hold yet appended (merge only). A row
    is written once (boxes clipped to the image can coincide), as the label reader would drop a repeat."""
    if existing is not None and not merge:
        raise HasLabels(f"{path} exists: send {{\"merge\": true}} to add the proposals to its rows, "
                        "or reject them")
    held = {(box.class_id, box.cx, box.cy, box.w, box.h) for box in parse_label(existing or b"", path).boxes}
    added = []
    for row in rows:
        if _rounded(row) not in held:
            held.add(_rounded(row))
            added.append(row)
    if existing is None:
        return write_label(added)
    text = existing.decode("utf-8-sig", errors="replace")
    return (text + ("\n" if text and not text.endswith("\n") else "") + write_label(added).decode()).encode()


def _rounded(row: Row) -> tuple[Any, ...]:
    """A row as the label reader gives it back after the writer wrote it."""
    parsed = parse_label(write_label([row]), "row").boxes[0]
    return parsed.class_id, parsed.cx, parsed.cy, parsed.w, parsed.h


def view(entry: dict[str, Any], class_names: list[str] | None) -> dict[str, Any]:
    """The proposal fields of the image view."""
    return {"proposals": [{**proposal, "class_name": _name(class_names, proposal["class_id"])}
                          for proposal in entry.get("proposals") or []],
            "proposal_model": entry.get("proposal_model")}


def _name(class_names: list[str] | None, class_id: int) -> str | None:
    return class_names[class_id] if class_names and class_id < len(class_names) else None
