"""The watch's sweep over exports: one whose message is gone (its publish failed, every delivery failed and it
sits in the dead letters, a call died and nothing sent it again) while it is queued, or running with a claim
whose heartbeat stopped, gets its request again, or fails once that did not help (the job kernel's rule,
common.domain.jobs.resend_action). An export resumes from its parts (common.services.export)."""
from __future__ import annotations

import time

from common.cloud import version_store
from common.domain import exports
from common.domain import jobs as kernel
from common.domain.messages import ExportRequest
from common.platform import config
from common.services import jobs


def _waits(document: dict) -> bool:
    """Queued, or running with no live claim (its heartbeat older than the lease)."""
    return document["status"] == exports.QUEUED or not kernel.lease_runs(document, _lease(), time.time())


def _lease() -> kernel.Lease:
    return exports.lease(config.export_lease_seconds())


def _failed(document: dict, reason: str, now: float) -> dict:
    return {"status": exports.FAILED, "finished_at": now,
            "error": f"{reason}; ask for the export again (`yolodrop export {document['dataset']}`)"}


WAITING = jobs.Waiting(
    version_store.exports, (exports.QUEUED, exports.RUNNING), config.export_topic,
    message=lambda document: (ExportRequest(export_id=document["id"]), {}), waits=_waits,
    activity=lambda document: max(kernel.stored(document, _lease().at) or 0.0, document.get("started_at") or 0.0),
    progress=lambda document: document.get("files_done") or 0, failed=_failed)


def resend_waiting(now: float) -> dict[str, str]:
    """{export id: what was done} for the exports whose message is gone."""
    return jobs.resend_stalled(WAITING, now)
