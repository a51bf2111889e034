"""The local stack's push pump (infra/local/push_pump.py): which notifications it pushes to ingest."""
from __future__ import annotations

import pytest

from infra.local.push_pump import notified

PRODUCTION = ("datasets/", "imports/")  # infra/settings.json notification_prefixes


@pytest.mark.parametrize("attributes, pushed", [
    ({"objectId": "datasets/d/images/a.jpg"}, True),
    ({"objectId": "imports/d.zip"}, True),
    ({"objectId": "derived/thumbnails/d/0a.jpg"}, False),  # production has no notification for it
    ({"objectId": "notes.md"}, False),
    ({}, True),  # no object: ingest answers for it (ignored, counted)
])
def test_only_notifications_production_would_send_are_pushed(attributes, pushed):
    assert notified(attributes, PRODUCTION) is pushed
    assert notified(attributes, ()) is True  # no prefixes given: everything
