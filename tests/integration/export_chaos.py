"""The export function's work with a kill installed: a test hook, not a production path.

    python -m tests.integration.export_chaos <export_id> <n>

handles {"export_id": <export_id>} exactly as the export function does, except that the process SIGKILLs
itself (no cleanup, as an instance stopped or out of memory) when it is about to write the n-th image of its
run: the parts before are committed, the one under way is half-written.
"""
from __future__ import annotations

import json
import os
import signal
import sys

from common.domain import zip_parts
from common.platform.events import PubSubMessage
from common.services import export


def install_kill(after: int) -> None:
    add_pieces = zip_parts.PartWriter.add_pieces
    images = []

    def drilled(self, name, pieces, compress=True):
        if not compress:  # images are stored, annotation files compressed
            images.append(name)
            if len(images) == after:
                os.kill(os.getpid(), signal.SIGKILL)
        return add_pieces(self, name, pieces, compress)

    zip_parts.PartWriter.add_pieces = drilled


def message(export_id: str) -> PubSubMessage:
    return PubSubMessage("drill", json.dumps({"export_id": export_id}).encode(), "drill", {})


if __name__ == "__main__":
    export_id, after = sys.argv[1], int(sys.argv[2])
    install_kill(after)
    print(export.handle(message(export_id)))
    sys.exit(3)  # the kill never came
