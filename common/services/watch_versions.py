"""The watch's sweep over versions: one whose request is gone (its publish failed and nobody asked again with
the same request_id, every delivery failed and it sits in the dead letters, the export function died
mid-freeze and nothing sent it again) while queued or running gets its request again, or fails once that did
not help (the job kernel's rule, common.domain.jobs.resend_action). A freeze run again finishes what the last
one left (common.services.versions)."""
from __future__ import annotations

from common.cloud import version_store
from common.domain import versions
from common.domain.messages import VersionRequest
from common.platform import config
from common.services import jobs


def _failed(document: dict, reason: str, now: float) -> dict:
    return {"status": versions.FAILED, "phase": versions.FREEZING, "finished_at": now,
            "error": f"{reason}; ask for a new version (`yolodrop version create {document['dataset']}`)"}


WAITING = jobs.Waiting(
    version_store.every_version_newest_first, (versions.QUEUED, versions.RUNNING, versions.FREEZING),
    config.export_topic,
    message=lambda document: (VersionRequest(dataset=document["dataset"], version=document["id"]), {}),
    waits=lambda document: True,  # a freeze is one call: nothing else follows a version
    activity=lambda document: document.get("started_at") or 0.0,
    progress=lambda document: versions.state(document)[0], failed=_failed,
    name=lambda document: versions.qualified_id(document["dataset"], document["id"]))


def resend_waiting(now: float) -> dict[str, str]:
    """{'{dataset}:{version}': what was done} for the versions whose request is gone."""
    return jobs.resend_stalled(WAITING, now)
