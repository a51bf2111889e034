"""People, as Firebase Authentication knows them: ID tokens and accounts.

Verification uses firebase-admin (`verify_id_token` with `check_revoked`), the
same code path against the Auth emulator (FIREBASE_AUTH_EMULATOR_HOST) as in
production. Every refusal becomes an IdentityRefused with a reason a person
can act on (a 401); none carries the token. When Firebase itself cannot be
reached (its certificates, the account lookup) the error is IdentityUnavailable
(a 503: the token may be fine, try again).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from common.cloud import clients
from common.platform import config
from common.platform.ttl_cache import TtlCache

# Firebase error codes that say the service, not the token, failed
_UNAVAILABLE_CODES = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN", "RESOURCE_EXHAUSTED"}


class IdentityRefused(Exception):
    """The token does not name a signed-in person; the message says why."""


class IdentityUnavailable(Exception):
    """Firebase Authentication could not be asked (certificates, accounts): not the caller's fault."""


@dataclass(frozen=True)
class Person:
    uid: str
    email: str | None
    email_verified: bool = False
    disabled: bool = False


def verify(id_token: str) -> Person:
    from firebase_admin import auth, exceptions
    try:
        claims = auth.verify_id_token(id_token, app=clients.firebase_app(), check_revoked=True)
    except auth.ExpiredIdTokenError:
        raise IdentityRefused("the ID token has expired: sign in again") from None
    except auth.RevokedIdTokenError:
        raise IdentityRefused("the ID token was revoked: sign in again") from None
    except auth.UserDisabledError:
        raise IdentityRefused("the account is disabled") from None
    except auth.UserNotFoundError:
        raise IdentityRefused("the account of this ID token no longer exists: sign up again") from None
    except auth.CertificateFetchError as exc:
        raise IdentityUnavailable(f"Firebase's token certificates could not be fetched ({exc})") from None
    except (auth.InvalidIdTokenError, ValueError) as exc:
        raise IdentityRefused(_invalid_reason(exc)) from None
    except exceptions.FirebaseError as exc:
        raise _classified(exc) from None
    if claims.get("exp", 0) < time.time():  # the emulator's tokens are not checked for expiry by the SDK
        raise IdentityRefused("the ID token has expired: sign in again")
    return Person(claims["uid"], claims.get("email"), bool(claims.get("email_verified")))


def _classified(exc) -> Exception:
    if exc.code in _UNAVAILABLE_CODES:
        return IdentityUnavailable(f"Firebase Authentication did not answer ({exc.code})")
    return IdentityRefused(f"Firebase Authentication refused the token ({exc.code})")


def _invalid_reason(exc: Exception) -> str:
    text = str(exc)
    if '"aud"' in text or '"iss"' in text:
        return "the ID token is for another project"
    return "the bearer token is neither an API key nor a valid Firebase ID token"


def _person(user) -> Person:
    return Person(user.uid, user.email, bool(user.email_verified), bool(user.disabled))


def person_by_email(email: str) -> Person | None:
    from firebase_admin import auth, exceptions
    try:
        return _person(auth.get_user_by_email(email, app=clients.firebase_app()))
    except (auth.UserNotFoundError, ValueError):
        return None
    except exceptions.FirebaseError as exc:
        raise _looked_up(exc) from None


def person_by_uid(uid: str) -> Person | None:
    from firebase_admin import auth, exceptions
    try:
        return _person(auth.get_user(uid, app=clients.firebase_app()))
    except (auth.UserNotFoundError, ValueError):
        return None
    except exceptions.FirebaseError as exc:
        raise _looked_up(exc) from None


def _looked_up(exc) -> Exception:
    classified = _classified(exc)
    return classified if isinstance(classified, IdentityUnavailable) else \
        IdentityUnavailable(f"Firebase Authentication failed the lookup ({exc.code})")


_ACCOUNTS: TtlCache[Person | None] = TtlCache(config.account_check_seconds)


def account(uid: str) -> Person | None:
    """The account `uid` as read at most ACCOUNT_CHECK_SECONDS ago on this instance (None: deleted): what an API
    key's use checks (disabled, deleted), without one Firebase call per request."""
    return _ACCOUNTS.get(uid, lambda: person_by_uid(uid))
