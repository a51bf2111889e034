"""Roles, members and keys: the pure rules of access."""
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from common.domain import access, api_keys, joining, quotas, rate_limits
from common.domain.access import EDITOR, OWNER, VIEWER, LastOwner
from common.platform import config
from common.platform.ttl_cache import TtlCache


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


# ---- invitations by e-mail address ----

def test_an_invitation_binds_to_the_person_who_verified_the_address():
    invitations = access.with_invitation({}, "bob@x.org", EDITOR, by="ann", now=1.0)
    members, left = access.bound({"ann": access.Member(role=OWNER, email=None, added_at=0.0)}, invitations,
                                 "bob-uid", "bob@x.org", now=2.0)
    assert access.role_of(members, "bob-uid") == EDITOR and left == {}


def test_an_invitation_of_another_address_binds_nothing():
    invitations = access.with_invitation({}, "bob@x.org", OWNER, by="ann", now=1.0)
    assert access.bound({}, invitations, "eve-uid", "eve@x.org", now=2.0) == ({}, invitations)


def test_a_member_taking_up_an_invitation_keeps_the_higher_role():
    members = access.with_member({}, "bob", OWNER, "bob@x.org", now=1.0)
    invitations = access.with_invitation({}, "bob@x.org", VIEWER, by="ann", now=1.0)
    assert access.role_of(access.bound(members, invitations, "bob", "bob@x.org", now=2.0)[0], "bob") == OWNER


def test_an_invitation_is_withdrawn_and_its_role_checked():
    invitations = access.with_invitation({}, "bob@x.org", VIEWER, by="ann", now=1.0)
    assert access.without_invitation(invitations, "bob@x.org") == {}
    with pytest.raises(ValueError, match="role must be"):
        access.with_invitation({}, "bob@x.org", "admin", by="ann", now=1.0)


# ---- who may join ----

@pytest.mark.parametrize("email, listed", [
    ("Ann@Example.com", True), ("bob@example.com", True), ("eve@evil-example.com", False),
    ("eve@example.com.evil.org", False), ("carl@partner.org", True), ("dan@partner.org.evil", False),
    ("other@partner.org", False)])
def test_the_allowlist_names_domains_and_addresses_exactly(email, listed):
    assert joining.on_allowlist(email, ("example.com", "@other.net", "carl@partner.org")) is listed


def test_each_policy_admits_whom_it_says():
    allowlist = ("example.com",)
    assert joining.admission_refusal("open", "eve@evil.org", allowlist, invited=False) is None
    assert joining.admission_refusal("allowlist", "ann@example.com", allowlist, invited=False) is None
    assert joining.admission_refusal("allowlist", "bob@else.org", allowlist, invited=True) is None
    assert "allowlist" in joining.admission_refusal("allowlist", "eve@evil.org", allowlist, invited=False)
    assert joining.admission_refusal("invitation", "bob@else.org", allowlist, invited=True) is None
    refusal = joining.admission_refusal("invitation", "ann@example.com", allowlist, invited=False)
    assert "invitation" in refusal and "ask an owner of a dataset to invite" in refusal


def test_an_unverified_address_is_told_to_verify():
    assert "eve@x.org is not verified" in joining.unverified_refusal("eve@x.org")
    assert "no e-mail address" in joining.unverified_refusal(None)


# ---- API keys expire ----

def test_a_key_expires_when_its_maker_says_within_the_maximum():
    now = 1_000_000.0
    assert api_keys.expires_at(now, None, 90, 365) == now + 90 * api_keys.DAY
    assert api_keys.expires_at(now, None, 900, 365) == now + 365 * api_keys.DAY
    assert api_keys.expires_at(now, now + 60, 90, 365) == now + 60
    for wrong in (now - 1, now + 366 * api_keys.DAY, "tomorrow", True):
        with pytest.raises(ValueError, match="at most 365 days ahead"):
            api_keys.expires_at(now, wrong, 90, 365)


def test_an_expired_key_is_refused_saying_so_and_an_old_key_lives_the_maximum():
    record = {"prefix": "yd_abcdefgh", "created_at": 0.0, "expires_at": 100.0}
    assert api_keys.expired_refusal(record, 99.0, 365) is None
    assert "expired at 1970-01-01 00:01:40 UTC" in api_keys.expired_refusal(record, 100.0, 365)
    legacy = {"prefix": "yd_abcdefgh", "created_at": 0.0}
    assert api_keys.expiry_of(legacy, 10) == 10 * api_keys.DAY


# ---- quotas ----

def test_a_quota_refusal_names_the_quota_the_usage_and_the_limit():
    quotas.check(quotas.DATASETS, 19, 1, 20)
    with pytest.raises(quotas.Exceeded) as refused:
        quotas.check(quotas.DATASETS, 20, 1, 20)
    assert str(refused.value).startswith("quota datasets exceeded: you use 20 of 20 and this would add 1")


def test_trainer_hours_count_from_the_start_of_the_day_to_each_end():
    day = quotas.day_start(10 * quotas.DAY + 500)
    assert day == 10 * quotas.DAY
    jobs = [{"started_at": day - 3600, "finished_at": day + 3600},  # began yesterday: today's hour only
            {"started_at": day + 7200, "finished_at": None},      # still running: until now
            {"started_at": None, "finished_at": None}]            # queued: nothing
    assert quotas.hours_used(jobs, now=day + 3 * 3600, since=day) == 2.0


@pytest.mark.parametrize("body, refused", [
    ({"epochs": 300, "imgsz": 1280}, None), ({"epochs": 1000}, "epochs"), ({"imgsz": 2048}, "imgsz"),
    ({"imgsz": [640, 4096]}, "imgsz"), ({"epochs": "many"}, None), ({"epochs": True}, None)])
def test_training_caps(body, refused):
    over = quotas.training_cap_refusal(body, max_epochs=300, max_imgsz=1280)
    assert (over[0] if over else None) == refused
    if over:
        assert "at most" in over[1] and "TRAINING_MAX_" in over[1]


def test_the_ttl_cache_keeps_a_value_for_its_period_and_no_more_entries_than_allowed():
    loads = []

    def load(value):
        loads.append(value)
        return value
    kept = TtlCache(lambda: 3600, max_entries=2)
    assert [kept.get(key, lambda k=key: load(k)) for key in ("a", "a", "b", "c", "a")] == ["a", "a", "b", "c", "a"]
    assert loads == ["a", "b", "c", "a"]  # "a" loaded again: the oldest, pushed out by "c"
    expiring = TtlCache(lambda: 0)
    assert [expiring.get("k", lambda: load("k")) for _ in range(2)] == ["k", "k"] and loads[-2:] == ["k", "k"]


def test_the_ttl_cache_shared_by_concurrent_requests_keeps_each_keys_value():
    """Threads switching every microsecond, each getting keys that push others out: unlocked, cachetools'
    LRU order and expiry heap break (a KeyError, a value of another key)."""
    usual = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    shared = TtlCache(lambda: 3600, max_entries=8)
    wrong: list[tuple] = []

    def requests(seed: int) -> None:
        for step in range(3000):
            key = (seed * 7 + step * 13) % 40
            got = shared.get(key, lambda: f"value of {key}", keep=lambda value: key % 5 != 0)
            if got != f"value of {key}":
                wrong.append((key, got))
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(requests, range(8)))  # re-raises what a thread raised
    finally:
        sys.setswitchinterval(usual)
    assert wrong == []


def test_the_deployments_account_settings_are_the_codes_defaults(monkeypatch):
    """The local stack runs the code's defaults and production infra/settings.json's: the same numbers."""
    accounts = json.loads((Path(__file__).parents[2] / "infra/settings.json").read_text())["accounts"]
    for name in accounts:
        monkeypatch.delenv(name.upper(), raising=False)
    assert accounts == {name: getattr(config, name)() for name in accounts}
