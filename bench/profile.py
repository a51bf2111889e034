"""Read a py-spy profile of the ingest server (collapsed stacks, `--format raw`)
and say where its CPU went: by component and by step of the event.

    .venv/bin/python -m bench.profile RAW

A sample belongs to the component of the innermost frame that has one
(standard-library frames are transparent, so the socket read of a storage
download counts as the storage client), and to the innermost step of the event
on its stack.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from collections import Counter

# (component, path fragments), first match wins; a frame matching none is transparent.
COMPONENTS = [
    ("image work (Pillow, hashing)", ("common/domain/imaging", "PIL/", "hashlib")),
    ("our logging (JSON lines)", ("common/platform/log",)),
    ("our code", ("common/", "main.py")),
    ("Firestore client", ("firestore_v1/", "firestore/")),
    ("google.api_core (retry, deadlines, gRPC wrappers)", ("api_core/",)),
    ("gRPC (Python side)", ("grpc/",)),
    ("protobuf / proto-plus", ("protobuf/", "proto/")),
    ("Storage client (HTTP: requests, urllib3, auth)",
     ("cloud/storage/", "storage/", "resumable_media/", "auth/", "requests/", "urllib3/")),
    ("JSON", ("json/",)),
    ("framework (functions-framework, Flask, Werkzeug, gunicorn, cloudevents)",
     ("functions_framework", "flask/", "werkzeug/", "gunicorn/", "cloudevents/")),
    ("logging (stdlib)", ("logging/",)),
]
# (step, function names), innermost first; a sample with none is the framework's, outside the event.
STEPS = [
    ("identify: hash, decode, thumbnail", ("identify_image",)),
    ("label parse", ("parse_label",)),
    ("downloads (pinned)", ("download", "download_as_bytes", "_identify", "_read_label")),
    ("thumbnail upload", ("upload",)),
    ("guard read before the transaction", ("_already_indexed",)),
    ("entry transaction", ("update_entries",)),
    ("ensure_dataset", ("ensure_dataset",)),
    ("the log line", ("_logged",)),
    ("rest of the event (decode, dispatch)", ("handle_event",)),
]
FRAME = re.compile(r"^(?P<function>.*?) \((?P<path>[^()]*?)(?::\d+)?\)$")


def parse(raw: str) -> Counter:
    """{tuple of (function, path) frames, root first: samples}."""
    stacks: Counter = Counter()
    for line in raw.splitlines():
        frames, _, count = line.rpartition(" ")
        if not frames or not count.isdigit():
            continue
        parsed = tuple(_frame(frame) for frame in frames.split(";"))
        stacks[parsed] += int(count)
    return stacks


def _frame(text: str) -> tuple[str, str]:
    match = FRAME.match(text)
    return (match["function"], match["path"]) if match else (text, "")


def component(frames: tuple[tuple[str, str], ...]) -> str:
    for _, path in reversed(frames):
        for name, fragments in COMPONENTS:
            if any(fragment in path for fragment in fragments):
                return name
    return "other (standard library, interpreter)"


def step(frames: tuple[tuple[str, str], ...]) -> str:
    for function, _ in reversed(frames):
        for name, functions in STEPS:
            if function in functions:
                return name
    return "framework and server outside the event"


def table(title: str, counts: Counter, total: int) -> list[str]:
    return [title] + [f"  {100 * n / total:5.1f}%  {name}" for name, n in counts.most_common()]


def summarize(raw: str) -> str:
    stacks = parse(raw)
    total = sum(stacks.values()) or 1
    by_component: Counter[str] = Counter()
    by_step: Counter[str] = Counter()
    for frames, n in stacks.items():
        by_component[component(frames)] += n
        by_step[step(frames)] += n
    return "\n".join([f"profile of the ingest server: {total} samples on CPU (py-spy)"]
                     + table("by component (innermost frame that has one):", by_component, total)
                     + table("by step of the event (innermost step on the stack):", by_step, total))


if __name__ == "__main__":
    print(summarize(Path(sys.argv[1]).read_text()))
