"""Jobs over a whole dataset on the job kernel (common.services.jobs): one
message asks for the plan, one message per unit of DATASET_JOB_CHUNK_SIZE items.

- revalidate: items are entry ids; each entry is re-derived against the
  dataset's current classes (common.cloud.dataset_index.rederive_entry).
- remap: items are label files; each is rewritten with its class ids
  remapped and the job's id recorded on the object it writes, so a file the
  job remapped already is never remapped again (a redelivered unit, a retry, a
  crash mid-unit); a file changed meanwhile by someone else is read again and
  remapped from its new content, never overwritten blindly. The job ends by
  writing data.yaml with the new names (done when data.yaml already carries
  them or the job's mark), which starts a revalidation like any data.yaml change.
- autolabel, accept: a model's proposals made, and accepted in bulk
  (common.services.autolabel, common.services.proposal_review).
- reindex: items are the dataset's objects as the bucket lists them, and those its
  index holds that the bucket does not; each is applied as ingest applies its event
  (common.services.reindex).
"""
from __future__ import annotations

import time

from common.cloud import dataset_index, dataset_job_store, guarded_objects, proposal_store
from common.domain import class_changes, dataset_jobs, layout
from common.domain import jobs as kernel
from common.domain.class_changes import Remap
from common.domain.datayaml import MAX_DATA_YAML_BYTES, parse_data_yaml
from common.platform.events import PubSubMessage
from common.platform.handler import Outcome
from common.services import jobs, proposal_review

REWRITE_ATTEMPTS = 5
WRITER = "yolodrop-remap"


class Contended(RuntimeError):
    """A file kept changing while it was rewritten: worth a redelivery."""


def start(job: dict, deadline: float | None = None) -> dict:
    """Ask for the job (safe to repeat: a job that exists is asked for again only while it waits; a failed one
    resumes, and a cancelled remap starts again: its id names what it does, so asking again is a new decision)."""
    resumed = (kernel.FAILED, kernel.CANCELLED) if job["kind"] == dataset_jobs.REMAP else (kernel.FAILED,)
    return jobs.request(jobs.DATASET_JOBS, job, deadline, resumed)


def cancel(dataset: str, job_id: str, by: str | None) -> dict:
    """Cancel a job of the dataset where its kind allows it (common.domain.dataset_jobs.CANCEL): the job as it
    is now. common.domain.jobs.CannotCancel says why not; NoSuchJob when the dataset has no job of that id."""
    job = dataset_job_store.get(job_id) if layout.is_document_id(job_id) else None
    if job is None or job["dataset"] != dataset:
        raise kernel.NoSuchJob(f"no job {job_id!r} of dataset {dataset!r}")
    return jobs.cancel(jobs.DATASET_JOBS, KINDS, job_id, by)


def start_revalidation(dataset: str, yaml_generation: int, deleted: bool = False) -> dict:
    job_id = dataset_jobs.revalidation_job_id(dataset, yaml_generation, deleted)
    return start(dataset_jobs.new_job(job_id, dataset, dataset_jobs.REVALIDATE, time.time(), None,
                                      yaml_generation=yaml_generation))


def handle(message: PubSubMessage) -> Outcome:
    return jobs.handle(jobs.DATASET_JOBS, KINDS, message)


def _entries_to_revalidate(job: dict) -> list[str]:
    return [entry_id for entry_id, _ in dataset_index.each_entry(job["dataset"], [], labelled=True)]


def _labels_to_remap(job: dict) -> list[str]:
    return sorted(fields["label.path"]
                  for _, fields in dataset_index.each_entry(job["dataset"], ["label.path"], labelled=True))


def _autolabel_plan(job: dict) -> list[str]:
    details, keys = _autolabel().plan(job)
    dataset_job_store.record(job["id"], **details)  # before any unit reads the job
    return keys


def _revalidate(job: dict, entry_ids: list[str]) -> dict:
    for entry_id in entry_ids:
        dataset_index.rederive_entry(job["dataset"], entry_id)
    return {"rewritten": 0}


def _remap(job: dict, label_paths: list[str]) -> dict:
    remap = Remap(job["names_after"], {int(old): new for old, new in job["ids"].items()})
    return {"rewritten": sum(_rewrite(path, remap.ids, job["id"]) for path in label_paths)}


def _rewrite(path: str, ids: dict[int, int | None], job_id: str) -> bool:
    """Rewrite one label file with its ids remapped, once for the job; whether the job rewrote it."""
    for _ in range(REWRITE_ATTEMPTS):
        try:
            held = guarded_objects.read(path)
        except guarded_objects.TooLarge:
            return False  # over ingest's label size: ingest names it; a remap leaves it as it is
        if held.data is None:
            return False  # deleted since the plan: nothing to remap
        if held.metadata.get(guarded_objects.WRITTEN_BY_JOB) == job_id:
            return True  # this job remapped it already (a unit run again): never twice
        try:
            remapped = class_changes.remap_label_text(held.data.decode("utf-8-sig"), ids)
        except UnicodeDecodeError:
            return False  # not text: ingest names it; a remap leaves it as it is
        if remapped is None:
            return False
        try:
            guarded_objects.write(path, remapped.encode(), held.generation, WRITER, "text/plain", job=job_id)
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


def _finish_remap(job: dict) -> str | None:
    """The remap's end: _write_names, looked up when it runs (a test replaces it to fail an end once)."""
    return _write_names(job)


def _resplit():
    """The splits image lists give a drop (common.services.resplit, which starts its jobs through this module)."""
    from common.services import resplit
    return resplit


def _reindex():
    """Ingest's code, which a reindex runs (common.services.reindex), loaded where chunks run: the API, which only
    starts jobs, must not load Pillow."""
    from common.services import reindex  # the dataset-jobs function imports it at start
    return reindex


def _kind(kind: str, plan, unit, finish=None) -> jobs.Kind:
    """A kernel kind whose units sum what the domain says the kind counts (dataset_jobs.COUNTED), cancelled
    where the domain says it may be (dataset_jobs.CANCEL)."""
    return jobs.Kind(plan=plan, unit=unit, counted=dataset_jobs.COUNTED[kind], cancel=dataset_jobs.CANCEL[kind],
                     **({"finish": finish} if finish else {}))


KINDS = {
    dataset_jobs.REVALIDATE: _kind(dataset_jobs.REVALIDATE, _entries_to_revalidate, _revalidate),
    dataset_jobs.REMAP: _kind(dataset_jobs.REMAP, _labels_to_remap, _remap, _finish_remap),
    dataset_jobs.AUTOLABEL: _kind(dataset_jobs.AUTOLABEL, _autolabel_plan, _label),
    dataset_jobs.ACCEPT: _kind(dataset_jobs.ACCEPT, lambda job: proposal_store.with_proposals(job["dataset"]),
                               proposal_review.accept_chunk),
    dataset_jobs.RESPLIT: _kind(dataset_jobs.RESPLIT, lambda job: _resplit().plan(job),
                                lambda job, items: _resplit().unit(job, items)),
    dataset_jobs.REINDEX: _kind(dataset_jobs.REINDEX, lambda job: _reindex().plan(job),
                                lambda job, items: _reindex().unit(job, items)),
}


def _write_names(job: dict) -> str | None:
    """Write data.yaml with the remapped names, once (done when it carries the job's mark or the new names
    already); why not, when its names changed otherwise during the remap."""
    path = layout.dataset_object(job["dataset"], job["data_yaml"])
    for _ in range(REWRITE_ATTEMPTS):
        try:
            held = guarded_objects.read(path, max_bytes=MAX_DATA_YAML_BYTES)
        except guarded_objects.TooLarge:
            return (f"{job['data_yaml']} was replaced during the remap by a file over {MAX_DATA_YAML_BYTES} "
                    "bytes; the label files are remapped, data.yaml is not: set the classes with PUT .../classes")
        generation, data = held.generation, held.data
        names = parse_data_yaml(data, path).names if data is not None else None
        if held.metadata.get(guarded_objects.WRITTEN_BY_JOB) == job["id"] or names == job["names_after"]:
            return None  # an earlier end wrote them
        if names != job["names_before"]:
            return (f"{job['data_yaml']} changed during the remap (its classes are now {names}); the label "
                    "files are remapped, data.yaml is not: set the classes with PUT .../classes")
        try:
            guarded_objects.write(path, class_changes.with_names(data, job["names_after"]), generation, WRITER,
                                  "application/x-yaml", job=job["id"])
            return None
        except guarded_objects.Moved:
            continue
    raise Contended(f"{path} kept changing while the remap wrote it")
