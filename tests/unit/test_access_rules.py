"""Roles, members and keys: the pure rules of access."""
import pytest

from common.domain import access, api_keys, rate_limits
from common.domain.access import EDITOR, OWNER, VIEWER, LastOwner


def test_roles_include_the_ones_below():
    assert access.allows(OWNER, VIEWER) and access.allows(OWNER, EDITOR) and access.allows(EDITOR, VIEWER)
    assert not access.allows(VIEWER, EDITOR) and not access.allows(EDITOR, OWNER)
    assert not access.allows(None, VIEWER)


def test_members_are_added_changed_and_removed():
    members = access.with_member({}, "ann", OWNER, "ann@x", now=1.0)
    members = access.with_member(members, "bob", VIEWER, "bob@x", now=2.0)
    members = access.with_member(members, "bob", EDITOR, "bob@x", now=3.0)
    assert access.role_of(members, "bob") == EDITOR and members["bob"]["added_at"] == 2.0
    assert access.role_of(access.without_member(members, "bob"), "bob") is None
    assert access.role_of(members, None) is None


def test_the_last_owner_cannot_leave_or_step_down():
    members = access.with_member({}, "ann", OWNER, None, now=1.0)
    with pytest.raises(LastOwner, match="ann is the last"):
        access.without_member(members, "ann")
    with pytest.raises(LastOwner):
        access.with_member(members, "ann", EDITOR, None, now=2.0)
    shared = access.with_member(members, "bob", OWNER, None, now=2.0)
    assert access.role_of(access.without_member(shared, "ann"), "bob") == OWNER


def test_a_dataset_without_owners_may_get_members_of_any_role():
    assert access.role_of(access.with_member({}, "bob", VIEWER, None, now=1.0), "bob") == VIEWER


def test_an_unknown_role_is_refused():
    with pytest.raises(ValueError, match="viewer, editor, owner"):
        access.with_member({}, "ann", "admin", None, now=1.0)


def test_keys_are_stored_as_their_hash_only():
    key = api_keys.new_key()
    assert api_keys.looks_like_key(key) and len(key) > 40 and key != api_keys.new_key()
    assert api_keys.fingerprint(key) == api_keys.fingerprint(key) != key
    assert key.startswith(api_keys.shown_prefix(key)) and len(api_keys.shown_prefix(key)) == 11


def test_rate_limit_windows():
    assert rate_limits.window_start(125.5, 60) == 120
    assert rate_limits.counter_id("u", "training", 125.5, 60) == "u|training|120"
    assert rate_limits.retry_after(125.5, 60) == 55 and rate_limits.retry_after(179.99, 60) == 1
