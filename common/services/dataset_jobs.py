"""The dataset-jobs function's work: plan a job, do one chunk, end the job.

Messages on the dataset-jobs topic: {"job_id", "step": "plan"} and
{"job_id", "step": "chunk", "chunk": n, "items": [...]}. Planning lists the
job's items and publishes one message per chunk; a chunk does its items and
records itself done once (a redelivered chunk finds its record and does
nothing); whichever chunk finds every chunk done ends the job, once.

- revalidate: items are entry ids; each entry is re-derived against the
  dataset's current classes (common.cloud.dataset_index.rederive_entry).
- remap: items are label files; each is rewritten with its class ids
  remapped, based on the generation it was read at; a file changed meanwhile
  is read again and remapped from its new content, never overwritten blindly.
  The job ends by writing data.yaml with the new names, which starts a
  revalidation like any data.yaml change.
- autolabel, accept: a model's proposals made, and accepted in bulk
  (common.services.autolabel).
"""
from __future__ import annotations

import json
import time

from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import dataset_index, dataset_job_store, guarded_objects, proposal_store, topics
from common.domain import class_changes, dataset_jobs, layout
from common.domain.proposals import CannotLabel
from common.domain.class_changes import Remap
from common.domain.datayaml import MAX_DATA_YAML_BYTES, parse_data_yaml
from common.platform import config
from common.platform.events import PubSubMessage
from common.platform.handler import Outcome, Result
from common.services import proposal_review

REWRITE_ATTEMPTS = 5
WRITER = "yolodrop-remap"


class Contended(RuntimeError):
    """A file kept changing while it was rewritten: worth a redelivery."""


def start(job: dict, deadline: float | None = None) -> dict:
    """Record the job and ask for its planning; a job that exists already is left as it is."""
    if dataset_job_store.create(job, deadline):
        topics.publish(config.dataset_jobs_topic(), {"job_id": job["id"], "step": "plan"}, deadline)
    return dataset_job_store.get(job["id"], deadline)


def start_revalidation(dataset: str, yaml_generation: int) -> dict:
    job_id = dataset_jobs.revalidation_job_id(dataset, yaml_generation)
    return start(dataset_jobs.new_job(job_id, dataset, dataset_jobs.REVALIDATE, time.time(), None,
                                      yaml_generation=yaml_generation))


def handle(message: PubSubMessage) -> Outcome:
    try:
        body = json.loads(message.data)
        job = dataset_job_store.get(body["job_id"])
    except (ValueError, KeyError, TypeError) as exc:
        return Outcome(Result.REJECTED, f"not a dataset-job message: {exc!r}")
    if job is None:
        return Outcome(Result.REJECTED, f"no dataset job {body['job_id']!r}")
    if job["status"] in dataset_jobs.ENDED:
        return Outcome(Result.DUPLICATE, f"job {job['id']} has ended")
    if body.get("step") == "plan":
        return _plan(job)
    return _chunk(job, int(body["chunk"]), body["items"])


def _plan(job: dict) -> Outcome:
    if job["planned"]:
        return Outcome(Result.DUPLICATE, f"job {job['id']} is planned already")
    try:
        items = _items(job)
    except CannotLabel as unusable:
        if dataset_job_store.claim_ending(job["id"]):
            dataset_job_store.end(job["id"], dataset_jobs.FAILED, error=str(unusable))
        return Outcome(Result.REJECTED, f"job {job['id']} cannot run: {unusable}", {"job_id": job["id"]})
    chunks = dataset_jobs.chunks(items, config.dataset_job_chunk_size())
    for number, chunk in enumerate(chunks):  # a redelivered plan publishes again: chunks are idempotent
        topics.publish(config.dataset_jobs_topic(), {"job_id": job["id"], "step": "chunk", "chunk": number,
                                                     "items": chunk})
    dataset_job_store.plan(job["id"], len(chunks), len(items))
    if not chunks:
        _end(job)
    return Outcome(Result.APPLIED, f"job {job['id']} planned: {len(items)} files in {len(chunks)} chunks",
                   {"job_id": job["id"]})


def _items(job: dict) -> list[str]:
    """Revalidation: the ids of the entries with a label; remap: the label files; autolabel: the images
    to label (the model's classes mapped first); accept: the entries with proposals."""
    if job["kind"] == dataset_jobs.AUTOLABEL:
        details, keys = _autolabel().plan(job)
        dataset_job_store.record(job["id"], **details)  # before any chunk reads the job
        return keys
    if job["kind"] == dataset_jobs.ACCEPT:
        return proposal_store.with_proposals(job["dataset"])
    query = dataset_index.entries_of(job["dataset"]).where(filter=FieldFilter("has_label", "==", True))
    if job["kind"] == dataset_jobs.REVALIDATE:
        return [snapshot.id for snapshot in query.select([]).stream()]
    return sorted(snapshot.get("label.path") for snapshot in query.select(["label.path"]).stream())


def _chunk(job: dict, number: int, items: list[str]) -> Outcome:
    if dataset_job_store.is_chunk_done(job["id"], number):
        return Outcome(Result.DUPLICATE, f"chunk {number} of {job['id']} is done")
    counts = CHUNK_WORK[job["kind"]](job, items)
    if not dataset_job_store.finish_chunk(job["id"], number, len(items), **counts):
        return Outcome(Result.DUPLICATE, f"chunk {number} of {job['id']} was done meanwhile")
    chunks_done, _, _ = dataset_job_store.progress(job["id"])
    if chunks_done >= (dataset_job_store.get(job["id"]) or {}).get("chunks_total", 0):
        _end(job)
    return Outcome(Result.APPLIED, f"chunk {number} of {job['id']}: {len(items)} files", {"job_id": job["id"], **counts})


def _revalidate(job: dict, entry_ids: list[str]) -> dict:
    for entry_id in entry_ids:
        dataset_index.rederive_entry(job["dataset"], entry_id)
    return {"rewritten": 0}


def _remap(job: dict, label_paths: list[str]) -> dict:
    remap = Remap(job["names_after"], {int(old): new for old, new in job["ids"].items()})
    return {"rewritten": sum(_rewrite(path, remap.ids) for path in label_paths)}


def _rewrite(path: str, ids: dict[int, int | None]) -> bool:
    """Rewrite one label file with its ids remapped; whether it was written."""
    for _ in range(REWRITE_ATTEMPTS):
        try:
            generation, data = guarded_objects.current(path)
        except guarded_objects.TooLarge:
            return False  # over ingest's label size: ingest names it; a remap leaves it as it is
        if data is None:
            return False  # deleted since the plan: nothing to remap
        try:
            remapped = class_changes.remap_label_text(data.decode("utf-8-sig"), ids)
        except UnicodeDecodeError:
            return False  # not text: ingest names it; a remap leaves it as it is
        if remapped is None:
            return False
        try:
            guarded_objects.write(path, remapped.encode(), generation, WRITER, "text/plain")
            return True
        except guarded_objects.Moved:
            continue  # someone wrote it meanwhile: remap their version
    raise Contended(f"{path} changed {REWRITE_ATTEMPTS} times while it was remapped")


def _label(job: dict, keys: list[str]) -> dict:
    return _autolabel().label_chunk(job, keys)


def _autolabel():
    """The code that runs a model, loaded where chunks run: the API, which only starts jobs, must not
    load Pillow and ONNX Runtime."""
    from common.services import autolabel  # the dataset-jobs function imports it at start
    return autolabel


CHUNK_WORK = {dataset_jobs.REVALIDATE: _revalidate, dataset_jobs.REMAP: _remap,
              dataset_jobs.AUTOLABEL: _label, dataset_jobs.ACCEPT: proposal_review.accept_chunk}


def _end(job: dict) -> None:
    if not dataset_job_store.claim_ending(job["id"]):
        return
    if job["kind"] == dataset_jobs.REMAP:
        problem = _write_names(job)
        if problem:
            dataset_job_store.end(job["id"], dataset_jobs.FAILED, error=problem)
            return
    _, _, counts = dataset_job_store.progress(job["id"], counted=dataset_jobs.COUNTED[job["kind"]])
    dataset_job_store.end(job["id"], dataset_jobs.COMPLETED, **counts)


def _write_names(job: dict) -> str | None:
    """Write data.yaml with the remapped names; why not, when its names changed during the remap."""
    path = layout.dataset_object(job["dataset"], job["data_yaml"])
    for _ in range(REWRITE_ATTEMPTS):
        try:
            generation, data = guarded_objects.current(path, max_bytes=MAX_DATA_YAML_BYTES)
        except guarded_objects.TooLarge:
            return (f"{job['data_yaml']} was replaced during the remap by a file over {MAX_DATA_YAML_BYTES} "
                    "bytes; the label files are remapped, data.yaml is not: set the classes with PUT .../classes")
        names = parse_data_yaml(data, path).names if data is not None else None
        if names != job["names_before"]:
            return (f"{job['data_yaml']} changed during the remap (its classes are now {names}); the label "
                    "files are remapped, data.yaml is not: set the classes with PUT .../classes")
        try:
            guarded_objects.write(path, class_changes.with_names(data, job["names_after"]), generation, WRITER,
                                  "application/x-yaml")
            return None
        except guarded_objects.Moved:
            continue
    raise Contended(f"{path} kept changing while the remap wrote it")
