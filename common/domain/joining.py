"""Who may join: the sign-up policy's rules. Pure.

Every person needs a verified e-mail address (the ID token's `email_verified`). Then the policy decides:
- open: anyone;
- allowlist: addresses and domains an operator lists, and people a dataset invited or made member;
- invitation: only people a dataset invited (by verified address) or made member, or an administrator added.
A person admitted once stays admitted (their `people` record), so leaving every dataset does not lock them out.
"""
from __future__ import annotations

OPEN, ALLOWLIST, INVITATION = "open", "allowlist", "invitation"


def normalized_email(email: str) -> str:
    return email.strip().lower()


def on_allowlist(email: str, allowlist: tuple[str, ...]) -> bool:
    """Whether `email` is listed itself or by its domain (`example.com` or `@example.com`); never by a suffix of
    a domain (`evil-example.com` is not `example.com`)."""
    address = normalized_email(email)
    domain = address.rpartition("@")[2]
    return any(item == address if "@" in item.lstrip("@") else item.lstrip("@") == domain for item in allowlist)


def unverified_refusal(email: str | None) -> str:
    if not email:
        return "your account has no e-mail address: sign in with an e-mail address or Google account"
    return (f"your e-mail address {email} is not verified: open the verification link sent to it "
            "(or sign in with Google), then sign in again")


def admission_refusal(policy: str, email: str, allowlist: tuple[str, ...], invited: bool) -> str | None:
    """Why a person with this verified address may not join, or None when they may."""
    if policy == OPEN or invited or (policy == ALLOWLIST and on_allowlist(email, allowlist)):
        return None
    if policy == ALLOWLIST:
        return (f"sign-up policy 'allowlist': {email} is not on this deployment's list of addresses and domains; "
                "ask its operator to add you, or ask a dataset owner to invite you")
    return (f"sign-up policy 'invitation': {email} has no invitation; ask an owner of a dataset to invite this "
            "address (PUT /datasets/{dataset}/members/{e-mail}), then sign in again")
