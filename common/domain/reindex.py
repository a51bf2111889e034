"""What a reindex and a reconciliation compare, pure: the bucket's listing of a dataset against its index.

Both apply their difference through ingest's own path (common.services.reindex): an object listed is applied as
its finalize event would be (generation guards make a known generation a no-op), an object the index holds but
the bucket no longer lists is applied as its delete event would be, at the generation the index holds.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from common.domain import entries, layout
from common.domain.bodies import Body
from common.domain.request_bodies import RequestId

# The roles ingest keeps in the index (common.services.ingest): anything else it ignores or unpacks (an archive).
INDEXED_ROLES = ("image", "label", "data_yaml", "class_names", "other")
CLASS_ROLES = ("data_yaml", "class_names")
SESSION_FIELDS = ("yolodrop-session-uploader", "yolodrop-session-key")  # common.cloud.uploader reads these


@dataclass(frozen=True)
class Listed:
    """One object as the bucket lists it: what its finalize event would carry."""
    name: str
    generation: int
    size: int | None = None
    metadata: dict[str, str] | None = field(default=None, compare=False)
    written_at: float | None = field(default=None, compare=False)  # when this generation was written (epoch s)


@dataclass(frozen=True)
class Gone:
    """An object the index holds at `generation` that the bucket did not list."""
    name: str
    generation: int


@dataclass(frozen=True)
class Difference:
    """What the index lacks (added), holds at an older generation (updated) and holds though it is gone
    (removed)."""
    added: tuple[Listed, ...] = ()
    updated: tuple[Listed, ...] = ()
    removed: tuple[Gone, ...] = ()

    def __len__(self) -> int:
        return len(self.added) + len(self.updated) + len(self.removed)

    def first(self, count: int) -> Difference:
        """At most `count` of its repairs, removals last (a bounded run repairs the rest next time)."""
        added = self.added[:count]
        updated = self.updated[:max(0, count - len(added))]
        return Difference(added, updated, self.removed[:max(0, count - len(added) - len(updated))])


def is_indexed(name: str, dataset: str) -> bool:
    """Whether ingest keeps the object in the dataset's index (not a folder placeholder, not another dataset's)."""
    role = layout.classify(name)
    return role.kind in INDEXED_ROLES and role.dataset == dataset


def defines_classes(name: str) -> bool:
    """data.yaml or a class list: a reindex applies these first, so every label is checked against the classes
    as in a drop that starts with them (a revalidation that ran once for that data.yaml does not run again)."""
    return layout.classify(name).kind in CLASS_ROLES


def session_metadata(metadata: object) -> dict[str, str] | None:
    """Of an object's metadata, only what says whose upload session wrote it (common.cloud.uploader)."""
    if not isinstance(metadata, dict):
        return None
    kept = {key: str(metadata[key]) for key in SESSION_FIELDS if metadata.get(key)}
    return kept or None


def entry_thumbnails(entry: entries.Entry) -> set[str]:
    """The thumbnails an entry's image files name: the shown one's and every other live source's."""
    return {record["thumbnail"] for source in entries.image_sources(entry).values()
            if (record := source["record"]) and record.get("thumbnail")}


def entry_objects(entry: entries.Entry) -> dict[str, int]:
    """{path: generation} of the files an entry indexes: each live image file of its name, and its label."""
    held = {source["path"]: source["held"] for source in entries.image_sources(entry).values() if source["held"]}
    label = entry.get("label")
    if label:
        held[label["path"]] = label["generation"]
    return held


def compare(listed: list[Listed], indexed: dict[str, int]) -> Difference:
    """The repairs that make `indexed` ({path: generation}) what `listed` says. A listing older than the index
    (an object written between the listing and the index's read) is no difference."""
    names = {item.name for item in listed}
    added = tuple(item for item in listed if item.name not in indexed)
    updated = tuple(item for item in listed if item.name in indexed and item.generation > indexed[item.name])
    removed = tuple(Gone(path, generation) for path, generation in sorted(indexed.items()) if path not in names)
    return Difference(added, updated, removed)


def settled(difference: Difference, now: float, grace: float) -> Difference:
    """The repairs of objects written at least `grace` seconds ago: a younger one's own event may still be on its
    way to ingest, and repairing it would count an event that was never lost."""
    def old_enough(item: Listed) -> bool:
        return _written_before(item, now - grace)
    return Difference(tuple(filter(old_enough, difference.added)), tuple(filter(old_enough, difference.updated)),
                      difference.removed)


def stray_thumbnails(listed: list[Listed], held: set[str], now: float, grace: float) -> list[Listed]:
    """The thumbnails no entry names, written at least `grace` seconds ago: ingest writes an image's thumbnail
    before its entry, so a younger one may belong to an entry on its way."""
    return [item for item in listed if item.name not in held and _written_before(item, now - grace)]


def _written_before(item: Listed, moment: float) -> bool:
    return item.written_at is None or item.written_at <= moment


# ---- a reindex's plan items: one string each (a job's plan stores lists of them) -----------------------------

def item_of(found: Listed | Gone) -> str:
    if isinstance(found, Gone):
        return json.dumps({"name": found.name, "generation": found.generation, "gone": True})
    return json.dumps({"name": found.name, "generation": found.generation, "size": found.size,
                       **({"metadata": found.metadata} if found.metadata else {})})


def parse_item(item: str) -> Listed | Gone:
    fields = json.loads(item)
    if fields.get("gone"):
        return Gone(fields["name"], fields["generation"])
    return Listed(fields["name"], fields["generation"], fields.get("size"), fields.get("metadata"))


# ---- what the API takes ----------------------------------------------------------------------------------------

MAX_DATASETS_PER_REQUEST = 50  # reindex jobs POST /reindex starts at most at once; `after` goes on from the last



def _request_id() -> Any:
    return Field(None, description="1-128 letters, digits or . _ : -; a retry with the same one gets the job the "
                                   "first request made (the CLI sends one)")


class ReindexRequest(Body):
    """POST /datasets/{dataset}/reindex: nothing but an optional request_id."""
    request_id: RequestId | None = _request_id()


class ReindexAll(Body):
    """POST /reindex: the datasets after `after` (in name order) as the bucket holds them, one job each."""
    request_id: RequestId | None = _request_id()
    after: str | None = Field(None, max_length=layout.MAX_DATASET_NAME,
                              description="the last dataset of the previous answer (its `next`)")
