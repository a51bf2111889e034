"""Pinned SHA-256 of Ultralytics' official pretrained weights: the only base-model files a trainer loads.

The trainer refuses a cached or downloaded file whose SHA-256 is not the pin of its name (and never
caches an unpinned download), so a file planted in the base-model cache is never loaded. Pins come
from two places, merged: PINNED below (checked in, reviewed like code) and the operator's setting
BASE_MODEL_SHA256 ("yolo11n.pt=<sha256>,yolov8s.pt=<sha256>"; an operator's pin of a name wins).
A name pinned in neither is refused: an operator computes the SHA-256 of the file they trust
(`sha256sum yolo11n.pt`) and adds it to the setting. Pure rules.
"""
from __future__ import annotations

import re

from common.domain.training_request import InvalidRequest, is_official_weights

SHA256 = re.compile(r"^[0-9a-f]{64}$")
SETTING = "BASE_MODEL_SHA256"

# name -> SHA-256 of the file Ultralytics publishes (release assets of ultralytics/assets, the tag
# this Ultralytics downloads from). Add a pin only for a digest read from the file itself.
PINNED: dict[str, str] = {}


def parse_pins(setting: str | None) -> dict[str, str]:
    """The operator's pins: 'name=sha256' separated by commas or whitespace; ValueError naming a bad one."""
    pins = {}
    for item in (setting or "").replace(",", " ").split():
        name, _, digest = item.partition("=")
        digest = digest.lower()
        if not is_official_weights(name) or not SHA256.match(digest):
            raise ValueError(f"{SETTING}: {item!r} is not <official weights name>=<64 hex digits of SHA-256>")
        pins[name] = digest
    return pins


def pin_for(name: str, setting: str | None) -> str:
    """The SHA-256 the file `name` must have, or InvalidRequest saying how an operator pins it."""
    pinned = {**PINNED, **parse_pins(setting)}.get(name)
    if pinned is None:
        raise InvalidRequest(f"the pretrained weights {name} have no pinned SHA-256, so they are not loaded: "
                             f"an operator adds '{name}=<sha256 of the trusted file>' to {SETTING}; "
                             "or train from a model YAML (yolo11n.yaml) or a registered model id")
    return pinned
