"""People this deployment knows: `people/{uid}` {email, invited_at (admitted by an invitation or a membership,
which stays), stored_bytes (common.cloud.quota_store)}.

`admission_refusal` runs on every authenticated person's request but costs Firestore (a query of pending
invitations, a read of the person's record) only once per person and ACCOUNT_CHECK_SECONDS on an instance:
it binds the invitations of the person's verified address, then applies the sign-up policy.
"""
from __future__ import annotations

import time

from common.cloud import dataset_members, db
from common.domain import joining
from common.platform import config, log
from common.platform.ttl_cache import TtlCache

_ADMISSIONS: TtlCache[str | None] = TtlCache(config.account_check_seconds)


def people():
    return db.client().collection("people")


def admission_refusal(uid: str, email: str, deadline: float) -> str | None:
    """Why the person `uid` with the verified address `email` may not use the API, or None (admitted)."""
    policy = config.join_policy()  # read per call: an operator's change (or a test's) applies at once
    key = (uid, email, policy, config.join_allowlist())
    return _ADMISSIONS.get(key, lambda: _admission(uid, joining.normalized_email(email), policy, deadline))


def _admission(uid: str, email: str, policy: str, deadline: float) -> str | None:
    bound = dataset_members.bind_invitations(uid, email, deadline)
    if bound:
        log.info("invitations taken up", uid=uid, datasets=bound[:20])
    if policy == joining.OPEN:
        return None
    recorded = _was_invited(uid, deadline)
    invited = recorded or bool(bound) or dataset_members.is_member_anywhere(uid, deadline)
    if invited and not recorded:
        _record_invited(uid, email, deadline)
    return joining.admission_refusal(policy, email, config.join_allowlist(), invited)


def _was_invited(uid: str, deadline: float) -> bool:
    snapshot = people().document(uid).get(["invited_at"], **db.deadline(deadline))
    return snapshot.exists and bool((snapshot.to_dict() or {}).get("invited_at"))


def _record_invited(uid: str, email: str, deadline: float) -> None:
    """Remembered, so a person admitted by invitation stays admitted after leaving every dataset."""
    people().document(uid).set({"email": email, "invited_at": time.time()}, merge=True, **db.deadline(deadline))
