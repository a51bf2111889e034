"""Who asked for an upload session, and whether what lands through it may still enter the index.

A resumable upload session's URL cannot be revoked, and Cloud Storage keeps it valid for about a week (no
shorter lifetime can be asked for). So a session's object carries who asked for it (object metadata: the
person's uid, and the API key's id when a key asked), and ingest asks `refusal` before indexing it: when that
person is no longer an editor or owner of the dataset, or that key is revoked or expired, the object is
deleted and an issue recorded on its path, so a removed member's or a revoked key's session lands nothing.
What the check reads (the dataset's members, the key) is cached a few seconds per worker.
"""
from __future__ import annotations

from common.cloud import api_key_store, dataset_index, dataset_members, guarded_objects, storage
from common.domain import access
from common.domain.issues import Issue
from common.platform import config, log
from common.platform.handler import Outcome, Result
from common.platform.ttl_cache import TtlCache

SESSION_UPLOADER = "yolodrop-session-uploader"  # object metadata: the uid whose session wrote it
SESSION_KEY = "yolodrop-session-key"            # object metadata: the API key that asked for the session
ISSUE = "uploader_not_allowed"
CHECK_SECONDS = 5.0

_MEMBERS: TtlCache = TtlCache(lambda: CHECK_SECONDS, max_entries=1000)
_KEYS: TtlCache = TtlCache(lambda: CHECK_SECONDS, max_entries=1000)


def metadata(writer: str, key_id: str | None) -> dict:
    """The metadata of a session's object (the administrator's sessions are not checked again)."""
    checked = {} if writer == "admin" else {SESSION_UPLOADER: writer, **({SESSION_KEY: key_id} if key_id else {})}
    return {guarded_objects.WRITER: writer, **checked}


def refusal(dataset: str, object_metadata: dict | None) -> str | None:
    """Why an object a session wrote may not enter the index, or None (not a session's, or still allowed)."""
    metadata = object_metadata or {}
    uid = metadata.get(SESSION_UPLOADER)
    if not uid:
        return None
    deadline = config.cloud_deadline()
    members = _MEMBERS.get(dataset, lambda: dataset_members.of(dataset, deadline)) or {}
    if not access.allows(access.role_of(members, uid), access.EDITOR):
        return (f"uploaded through a session of {uid}, who is no longer an editor of dataset {dataset!r}: "
                "the file was deleted; an editor may upload it again")
    key_id = metadata.get(SESSION_KEY)
    if key_id and not _KEYS.get(key_id, lambda: api_key_store.is_live(key_id, deadline)):
        return (f"uploaded through a session an API key ({key_id}) asked for, and that key is revoked or expired: "
                "the file was deleted; upload it again with a live key")
    return None


def issue(path: str, reason: str) -> Issue:
    return Issue(ISSUE, reason, path)


def discarded(event, dataset: str, reason: str) -> Outcome:
    """Delete what a refused session wrote (that generation only) and record the issue on its path: the outcome."""
    storage.delete_generation(event.name, event.generation)
    dataset_index.put_file(dataset, event.name, event.generation, [issue(event.name, reason)])
    log.warning("session upload refused", object=event.name, generation=event.generation, reason=reason)
    return Outcome(Result.APPLIED, f"refused: {reason}", {"issues": 1})
