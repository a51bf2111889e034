"""People, as Firebase Authentication knows them: ID tokens and accounts.

Verification uses firebase-admin (`verify_id_token` with `check_revoked`), the
same code path against the Auth emulator (FIREBASE_AUTH_EMULATOR_HOST) as in
production. Every refusal becomes an IdentityRefused with a reason a person
can act on; none carries the token.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from common.cloud import clients


class IdentityRefused(Exception):
    """The token does not name a signed-in person; the message says why."""


@dataclass(frozen=True)
class Person:
    uid: str
    email: str | None


def verify(id_token: str) -> Person:
    from firebase_admin import auth
    try:
        claims = auth.verify_id_token(id_token, app=clients.firebase_app(), check_revoked=True)
    except auth.ExpiredIdTokenError:
        raise IdentityRefused("the ID token has expired: sign in again") from None
    except auth.RevokedIdTokenError:
        raise IdentityRefused("the ID token was revoked: sign in again") from None
    except auth.UserDisabledError:
        raise IdentityRefused("the account is disabled") from None
    except (auth.InvalidIdTokenError, ValueError) as exc:
        raise IdentityRefused(_invalid_reason(exc)) from None
    if claims.get("exp", 0) < time.time():  # the emulator's tokens are not checked for expiry by the SDK
        raise IdentityRefused("the ID token has expired: sign in again")
    return Person(claims["uid"], claims.get("email"))


def _invalid_reason(exc: Exception) -> str:
    text = str(exc)
    if '"aud"' in text or '"iss"' in text:
        return "the ID token is for another project"
    return "the bearer token is neither an API key nor a valid Firebase ID token"


def person_by_email(email: str) -> Person | None:
    from firebase_admin import auth
    try:
        user = auth.get_user_by_email(email, app=clients.firebase_app())
    except auth.UserNotFoundError:
        return None
    return Person(user.uid, user.email)


def person_by_uid(uid: str) -> Person | None:
    from firebase_admin import auth
    try:
        user = auth.get_user(uid, app=clients.firebase_app())
    except (auth.UserNotFoundError, ValueError):
        return None
    return Person(user.uid, user.email)
