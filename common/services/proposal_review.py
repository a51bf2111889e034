"""Reviewing proposals: accepted ones become the image's label file in the bucket,
written with the YOLO writer and a generation precondition (as PUT .../labels
writes it), so the ordinary ingest event indexes them; the proposals are then
dropped from the index. Used by the API for one image and by the accept job.
"""
from __future__ import annotations

from common.cloud import dataset_index, guarded_objects, proposal_store
from common.domain import layout, proposals


# ---- accepting -----------------------------------------------------------------

def accept(dataset: str, entry: dict, min_confidence: float, merge: bool, writer: str,
           based_on: int | None = None, timeout: float = 60) -> dict:
    """Write an image's proposals (those at or above `min_confidence`) as its label file, based on the
    label generation `based_on` (default: the one the index holds), then drop the proposals.
    Raises proposals.NothingToAccept, proposals.HasLabels, guarded_objects.Moved or guarded_objects.TooLarge
    (the label file there now is over what is read whole; nothing written)."""
    rows = proposals.accepted_rows(entry.get("proposals"), min_confidence)
    path = layout.label_path_for(entry["image"]["path"])
    held = (entry.get("label") or {}).get("generation", 0) if based_on is None else based_on
    existing = None
    if held:
        generation, existing = guarded_objects.current(path, timeout)
        if generation != held:
            raise guarded_objects.Moved(generation, existing)
    data = proposals.label_file(rows, existing, merge, path)
    written = guarded_objects.write(path, data, held, writer, "text/plain", timeout)
    proposal_store.clear(dataset, entry["key"], entry.get("proposal_job"))
    return {"label_path": path, "generation": written, "accepted": len(rows)}


def accept_chunk(job: dict, keys: list[str]) -> dict:
    counts = {"accepted": 0, "skipped": 0, "conflicts": 0}
    for entry in dataset_index.read_entries(job["dataset"], keys).values():
        if not entry or not entry.get("image") or not entry.get("proposals"):
            counts["skipped"] += 1
            continue
        try:
            accept(job["dataset"], entry, job["min_confidence"], job["merge"], job["requested_by"] or "admin")
            counts["accepted"] += 1
        except (proposals.NothingToAccept, proposals.HasLabels):
            counts["skipped"] += 1
        except (guarded_objects.Moved, guarded_objects.TooLarge):
            counts["conflicts"] += 1
    return counts
