"""What one storage object event does to the index.

A bad file is a recorded issue and an APPLIED outcome; only transient failures
(storage or Firestore unavailable) raise, so the platform retries them.
"""
from __future__ import annotations

import functools
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from collections.abc import Callable

from google.api_core.exceptions import NotFound

from common.cloud import dataset_index, split_store, storage, uploader
from common.domain import entries, file_limits, foreign_files, split_lists
from common.domain.datayaml import DataYaml, parse_data_yaml, size_issue
from common.domain.entries import ImageRecord, LabelRecord
from common.domain.imaging import identify_image
from common.domain.issues import Issue
from common.domain.labels import ParsedLabel, parse_label
from common.domain.layout import DatasetObjectRole, classify, dataset_relative, in_dataset, thumbnail_path
from common.platform import config, log
from common.platform.events import DELETED, ObjectEvent
from common.platform.handler import Outcome, Result
from common.services import archive_import, class_files, dataset_jobs, resplit

MAX_LABEL_BYTES = file_limits.MAX_LABEL_BYTES
IN_MEMORY_BYTES = 16 * 1024 * 1024  # smaller images are read in one request

GONE = Outcome(Result.STALE, "stale event: that generation is gone from the bucket")
STALE = Outcome(Result.STALE, "stale event: a newer generation or a delete is indexed")
DUPLICATE = Outcome(Result.DUPLICATE, "duplicate event: this generation is indexed")


def handle_batch(events: list[ObjectEvent]) -> list[Outcome | Exception]:
    """Apply events to the index together, each one's outcome (or the exception it raised) in its place.
    Image and label events share one guard read, download in parallel and go into one transaction; the rare
    others (data.yaml, unrecognized files, archives) are applied one by one."""
    results: dict[int, Outcome | Exception] = {}
    entry_events: list[tuple[int, ObjectEvent, DatasetObjectRole]] = []
    for index, event in enumerate(events):
        try:
            routed = _route(event)
            if isinstance(routed, Outcome):
                results[index] = routed
            elif routed.kind in ("image", "label"):
                entry_events.append((index, event, routed))
            else:
                results[index] = OTHER_KINDS[routed.kind](event, routed)
        except Exception as error:
            results[index] = error
    for (index, _, _), result in zip(entry_events, _entry_events([(e, r) for _, e, r in entry_events])):
        results[index] = result
    return [results[index] for index in range(len(events))]


def _route(event: ObjectEvent) -> Outcome | DatasetObjectRole:
    """The event's role in its dataset, or its outcome when nothing is to be done."""
    found = classify(event.name)
    role = in_dataset(found)
    if event.bucket != config.data_bucket():
        return Outcome(Result.IGNORED, f"ignored: bucket {event.bucket} is not the data bucket")
    if role is None:  # of no dataset: ignored, or a folder no dataset may be named
        return Outcome(Result.IGNORED, f"ignored ({found.kind})")
    if event.action == DELETED and event.overwritten:
        # Not a removal: applying it would show the object gone (a label, the classes) until the
        # new generation's finalize arrives, and start a needless revalidation for data.yaml.
        return Outcome(Result.STALE, "overwritten, not deleted: the new generation's event follows")
    refused = uploader.refusal(role.dataset, event.metadata) if event.action != DELETED else None
    if refused:  # an upload session of someone no longer allowed (common.cloud.uploader)
        return uploader.discarded(event, role.dataset, refused)
    dataset_index.ensure_dataset(role.dataset)
    return role


def _content(record: ImageRecord | LabelRecord) -> str | None:
    """An image's content (its sha256); a label has none."""
    sha256 = record.get("sha256")
    return sha256 if isinstance(sha256, str) else None


def _entry_key(role: DatasetObjectRole) -> str:
    """The entry an image or a label belongs to (layout.classify names one for both)."""
    if role.key is None:
        raise ValueError(f"a {role.kind} of dataset {role.dataset} with no entry key")
    return role.key


def _applied(applied: bool, what: str, issues: list[Issue] | None = None) -> Outcome:
    return Outcome(Result.APPLIED, what, {"issues": len(issues or [])}) if applied else STALE


@dataclass(frozen=True)
class _Change:
    """What one image or label event asks of its entry."""
    event: ObjectEvent
    role: DatasetObjectRole
    record: ImageRecord | LabelRecord | None = None  # None: the file is deleted
    issues: tuple[Issue, ...] = ()

    @property
    def part(self) -> str:
        return self.role.kind

    def entry_change(self) -> dataset_index.EntryChange:
        event, role, part, record, key = self.event, self.role, self.part, self.record, _entry_key(self.role)
        if record is None:
            return dataset_index.EntryChange(
                role.dataset, key, role.split, part, event.generation,
                lambda entry: entries.delete_part(entry, part, event.generation, event.name),
                deleting=True, path=event.name)
        return dataset_index.EntryChange(
            role.dataset, key, role.split, part, event.generation,
            lambda entry: entries.set_part(entry, part, record, list(self.issues)),
            content=_content(record), path=event.name)

    def outcome(self, update: dataset_index.EntryUpdate) -> Outcome:
        _remove_orphan(update)
        if self.record is None:
            return _applied(update.applied, f"{self.part} removed")
        return _applied(update.applied, f"{self.part} indexed", list(self.issues))


def _entry_events(events: list[tuple[ObjectEvent, DatasetObjectRole]]) -> list[Outcome | Exception]:
    """Image and label events: guards read in one request, files read in parallel, one transaction."""
    stale = [known or repeat for known, repeat in zip(_already_indexed(events), _repeats(events))]
    prepared = _in_parallel(_prepare, [item for item, known in zip(events, stale) if not known])
    prepared_in_order = iter(prepared)
    results = [DUPLICATE if known else next(prepared_in_order) for known in stale]
    changes = [(index, result) for index, result in enumerate(results) if isinstance(result, _Change)]
    try:
        updates = dataset_index.update_entries([change.entry_change() for _, change in changes])
    except Exception as error:
        updates = [error] * len(changes)
    for (index, change), update in zip(changes, updates):
        results[index] = update if isinstance(update, Exception) else change.outcome(update)
    return results


def _repeats(events: list[tuple[ObjectEvent, DatasetObjectRole]]) -> list[bool]:
    """Which events repeat one earlier in the batch (a redelivery pulled with the original): read once."""
    seen: set[tuple[str, str, int]] = set()
    repeats = []
    for event, _ in events:
        identity = (event.action, event.name, event.generation)
        repeats.append(identity in seen)
        seen.add(identity)
    return repeats


def _already_indexed(events: list[tuple[ObjectEvent, DatasetObjectRole]]) -> list[bool]:
    """Cheap guards before any download, read in one request: a duplicate or superseded finalize. The
    transaction checks again; this only saves the download of a known generation."""
    finalized = [(index, event, role) for index, (event, role) in enumerate(events) if event.action != DELETED]
    stale = [False] * len(events)
    if not finalized:
        return stale
    held = dataset_index.read_guards([(role.dataset, _entry_key(role), role.kind, event.name)
                                      for _, event, role in finalized])
    for (index, event, role), entry in zip(finalized, held):
        stale[index] = entry is not None and entries.is_stale(entry, role.kind, event.generation, path=event.name)
    return stale


def _in_parallel(work: Callable, items: list) -> list:
    """work(*item) for each item, each result or exception in its place; downloads overlap."""
    def attempt(item):
        try:
            return work(*item)
        except Exception as error:
            return error
    if len(items) <= 1:
        return [attempt(item) for item in items]
    return list(_pool().map(attempt, items))


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=config.ingest_read_threads(), thread_name_prefix="ingest-read")


def _prepare(event: ObjectEvent, role: DatasetObjectRole) -> _Change | Outcome:
    """Read and check the file an event names: the change it asks for, or GONE."""
    if event.action == DELETED:
        return _Change(event, role)
    return (_prepare_image if role.kind == "image" else _prepare_label)(event, role)


def _prepare_image(event: ObjectEvent, role: DatasetObjectRole) -> _Change | Outcome:
    try:
        facts = _identify(event, role)
    except NotFound:
        return GONE
    thumbnail = thumbnail_path(role.dataset, facts.sha256) if facts.thumbnail else None
    thumbnail_generation = storage.upload(thumbnail, facts.thumbnail, "image/jpeg") if thumbnail else None
    record = ImageRecord(path=event.name, generation=event.generation, sha256=facts.sha256, size=facts.size,
                         format=facts.format, width=facts.width, height=facts.height,
                         orientation=facts.orientation, oriented_width=facts.oriented_width,
                         oriented_height=facts.oriented_height, thumbnail=thumbnail,
                         thumbnail_generation=thumbnail_generation, exif=facts.exif)
    return _Change(event, role, record, tuple(facts.issues))


def _remove_orphan(update: dataset_index.EntryUpdate) -> None:
    """The thumbnail of content no entry holds any more. A failure here leaves a file, never a wrong index:
    the event is done, so it is not retried for this."""
    if update.orphaned_thumbnail:
        name, generation = update.orphaned_thumbnail
        try:
            removed = storage.delete_generation(name, generation)
        except Exception as error:
            log.warning("orphaned thumbnail not removed", thumbnail=name, error=repr(error)[:300])
            return
        log.info("orphaned thumbnail removed" if removed else "orphaned thumbnail already replaced or gone",
                 thumbnail=name, generation=generation)


def _identify(event: ObjectEvent, role: DatasetObjectRole):
    if event.size is not None and event.size <= IN_MEMORY_BYTES:
        data = storage.download(event.name, event.generation)
        return identify_image(io.BytesIO(data), event.name, role.extension or "")
    with storage.blob(event.name, event.generation).open("rb", chunk_size=storage.CHUNK_BYTES) as reader:
        return identify_image(reader, event.name, role.extension or "")


def _prepare_label(event: ObjectEvent, role: DatasetObjectRole) -> _Change | Outcome:
    parsed = _read_label(event)
    if parsed is None:
        return GONE
    record = LabelRecord(path=event.name, generation=event.generation,
                         boxes=[box.to_dict() for box in parsed.boxes])
    return _Change(event, role, record, tuple(parsed.issues))


def _read_label(event: ObjectEvent) -> ParsedLabel | None:
    if event.size is not None and event.size > MAX_LABEL_BYTES:
        issue = Issue("label_too_large", f"the file is {event.size} bytes; the limit is {MAX_LABEL_BYTES} bytes",
                      event.name)
        return ParsedLabel(boxes=[], issues=[issue])
    try:
        data = storage.download(event.name, event.generation)
    except NotFound:
        return None
    return parse_label(data, event.name)


def _data_yaml(event: ObjectEvent, role: DatasetObjectRole) -> Outcome:
    if event.action == DELETED:
        names, issues, splits = None, None, {}
    else:
        try:
            parsed = _read_yaml(event)
        except NotFound:
            return GONE
        names, issues, splits = parsed.names, parsed.issues, parsed.splits
    if not dataset_index.put_data_yaml(role.dataset, event.name, event.generation, names, issues):
        return STALE
    # Every label is checked again against the new classes, as a job in chunks: at any size (a redelivered
    # event finds the job of its generation), with progress, and the statistics exact when it ends.
    job = dataset_jobs.start_revalidation(role.dataset, event.generation, deleted=event.action == DELETED)
    # the splits its lists say (or, gone, no longer say): common.services.resplit
    lists = split_lists.has_lists(splits) or split_store.has_lists(split_store.state(role.dataset))
    resplit_job = _resplit_if(lists, event, role)
    return Outcome(Result.APPLIED, f"classes {'removed' if names is None else 'set'}; revalidation {job['id']}"
                   + (f"; resplit {resplit_job}" if resplit_job else ""),
                   {"issues": len(issues or []), "job_id": job["id"]})


def _resplit_if(wanted: bool, event: ObjectEvent, role: DatasetObjectRole) -> str | None:
    """Start the resplit of this event (common.services.resplit) when `wanted`: its job id."""
    if not wanted:
        return None
    return resplit.start_resplit(role.dataset, event.name, event.generation, event.action)["id"]


def _read_yaml(event: ObjectEvent) -> DataYaml:
    too_large = size_issue(event.size, event.name) if event.size is not None else None
    if too_large:  # known from the event: not worth a download
        return DataYaml(None, [too_large])
    return parse_data_yaml(storage.blob(event.name, event.generation).download_as_bytes(), event.name)


def _other(event: ObjectEvent, role: DatasetObjectRole) -> Outcome:
    """A file ingest does not index: a known companion of another tool's export (no issue), a COCO or Pascal VOC
    file that is brought in whole (its issue says how), or an unrecognized file."""
    lists = split_store.state(role.dataset)
    listed = event.name in (lists.get("split_sources") or [])
    relative = dataset_relative(event.name, role.dataset)
    if event.action == DELETED:
        removed = dataset_index.put_file(role.dataset, event.name, event.generation, None)
        gives_splits = listed or foreign_files.record(relative, event.name, role.dataset, listed=listed).gives_splits
        _resplit_if(removed and gives_splits, event, role)
        return _applied(removed, "file removed")
    try:
        head = _head(event) if foreign_files.is_image_list(relative) else None
    except NotFound:
        return GONE
    found = foreign_files.record(relative, event.name, role.dataset, head, listed)
    recorded = dataset_index.put_file(role.dataset, event.name, event.generation, found.issues, found.details)
    # after the record: the job's plan records the file again with what it read in it
    _resplit_if(recorded and (found.gives_splits or (foreign_files.is_image_list(relative)
                                                      and split_store.has_lists(lists))), event, role)
    return _applied(recorded, found.details.get("layout", "unrecognized") + " file", found.issues)


def _head(event: ObjectEvent) -> bytes:
    """The first bytes of an image list: enough to tell whose it is, whatever its size."""
    if event.size == 0:
        return b""
    return storage.blob(event.name, event.generation).download_as_bytes(start=0, end=foreign_files.LIST_HEAD_BYTES - 1)


OTHER_KINDS = {"data_yaml": _data_yaml, "class_names": class_files.handle, "other": _other,
               "import": archive_import.handle}


def quarantine(event: ObjectEvent) -> Outcome:
    """The event was not handled: handling it killed its instance (common.platform.group_commit). Record that on
    the file, where its owner looks (the dataset's issues), so that the file is not silently missing from the index."""
    role = _route(event)
    if isinstance(role, Outcome):
        return role
    if event.action == DELETED:
        return Outcome(Result.REJECTED, "quarantined: a removal whose handling killed its instance; not applied")
    issue = Issue("ingest_quarantined", f"handling generation {event.generation} of this file stopped the ingest "
                  "function twice (out of memory, or a crash), so it was set aside and is not indexed: check that "
                  "it is the file you meant (its size, its format), then upload a fixed or smaller version; a new "
                  "version is indexed as usual", event.name)
    recorded = dataset_index.put_file(role.dataset, event.name, event.generation, [issue])
    return Outcome(Result.REJECTED, "quarantined: recorded as an issue on the file" if recorded
                   else "quarantined: a newer version of the file is indexed", {"issues": 1})
