"""Whom prediction lets in is kept PREDICT_ACCESS_SECONDS per instance (common/api/resources/predictions.py): an
admission saves the members read of the requests after it; a refusal is never kept; a removal takes effect once
the period is over."""
from __future__ import annotations

import pytest

from common.api import access
from common.api.context import Principal
from common.api.resources import predictions


class Context:
    def __init__(self, uid: str):
        self.principal = Principal("person", uid=uid)


@pytest.fixture
def members(monkeypatch) -> dict:
    """{dataset: {uid}}, read by a counted access.may_see."""
    held: dict = {"reads": 0, "d": {"ann"}}

    def may_see(ctx, dataset):
        held["reads"] += 1
        return ctx.principal.uid in held.get(dataset, set())
    monkeypatch.setattr(access, "may_see", may_see)
    monkeypatch.setattr(predictions, "_ADMITTED", predictions.TtlCache(lambda: 60.0))
    return held


def test_an_admission_is_kept_for_the_period(members, monkeypatch):
    monkeypatch.setenv("PREDICT_ACCESS_SECONDS", "60")
    may_see = predictions._may_see(Context("ann"))
    assert may_see("d") and may_see("d") and members["reads"] == 1
    members["d"].discard("ann")  # removed: still admitted within the period, the price of the saved read
    assert may_see("d") and members["reads"] == 1
    predictions._ADMITTED.forget(("person", "ann", "d"))  # the period over
    assert not predictions._may_see(Context("ann"))("d") and members["reads"] == 2


def test_a_refusal_is_never_kept(members, monkeypatch):
    monkeypatch.setenv("PREDICT_ACCESS_SECONDS", "60")
    may_see = predictions._may_see(Context("bob"))
    assert not may_see("d") and not may_see("d") and members["reads"] == 2
    members["d"].add("bob")  # made a member: admitted at the next request
    assert may_see("d") and members["reads"] == 3


def test_each_caller_and_dataset_is_its_own_admission(members, monkeypatch):
    monkeypatch.setenv("PREDICT_ACCESS_SECONDS", "60")
    members["e"] = {"ann"}
    assert predictions._may_see(Context("ann"))("d") and predictions._may_see(Context("ann"))("e")
    assert not predictions._may_see(Context("bob"))("d")
    assert members["reads"] == 3


def test_zero_reads_the_members_on_every_request(members, monkeypatch):
    monkeypatch.setenv("PREDICT_ACCESS_SECONDS", "0")
    may_see = predictions._may_see(Context("ann"))
    assert may_see("d") and may_see("d") and members["reads"] == 2
