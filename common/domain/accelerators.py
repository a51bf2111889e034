"""Which GPUs a training runs on: the request's `accelerator: {type, count}` within the operator's limits. Pure.

A request without `accelerator` runs where every training ran before: the trainer's Cloud Run Job, one GPU.
A request with one runs as a Vertex AI custom job on one machine with `count` GPUs of `type` (the trainer runs
Ultralytics' own DDP over them), when the operator allows that type and count (infra/settings.json
trainer.vertex; TRAINER_ACCELERATOR_TYPES and TRAINER_MAX_ACCELERATORS). Vertex AI attaches GPUs only to
certain machine types, each with a fixed number of them: MACHINES is that table (Vertex AI's "Configure
compute resources for custom training": GPUs per machine type), and a count it lacks is refused with the
counts there are.
"""
from __future__ import annotations

from dataclasses import dataclass

# type as a request names it (Cloud Run's spelling) -> (Vertex AI's acceleratorType, {count: machine type})
MACHINES: dict[str, tuple[str, dict[int, str]]] = {
    "nvidia-l4": ("NVIDIA_L4", {1: "g2-standard-8", 2: "g2-standard-24", 4: "g2-standard-48",
                                8: "g2-standard-96"}),
    "nvidia-tesla-t4": ("NVIDIA_TESLA_T4", {1: "n1-standard-8", 2: "n1-standard-16", 4: "n1-standard-32"}),
    "nvidia-tesla-a100": ("NVIDIA_TESLA_A100", {1: "a2-highgpu-1g", 2: "a2-highgpu-2g", 4: "a2-highgpu-4g",
                                                8: "a2-highgpu-8g", 16: "a2-megagpu-16g"}),
    "nvidia-a100-80gb": ("NVIDIA_A100_80GB", {1: "a2-ultragpu-1g", 2: "a2-ultragpu-2g", 4: "a2-ultragpu-4g",
                                              8: "a2-ultragpu-8g"}),
    "nvidia-h100-80gb": ("NVIDIA_H100_80GB", {1: "a3-highgpu-1g", 2: "a3-highgpu-2g", 4: "a3-highgpu-4g",
                                              8: "a3-highgpu-8g"}),
}


class InvalidAccelerator(ValueError):
    """The accelerator a request asks for is not one this deployment gives; the message says which it gives."""


@dataclass(frozen=True)
class Accelerator:
    type: str
    count: int

    @property
    def vertex_type(self) -> str:
        return MACHINES[self.type][0]

    @property
    def machine_type(self) -> str:
        return MACHINES[self.type][1][self.count]

    def stored(self) -> dict[str, object]:
        return {"type": self.type, "count": self.count}


@dataclass(frozen=True)
class Limits:
    """What the operator allows: GPU types (none: every training runs on the Cloud Run Job) and at most how
    many of them one training may have."""
    types: tuple[str, ...] = ()
    max_count: int = 1

    def unknown_types(self) -> list[str]:
        return [name for name in self.types if name not in MACHINES]


CLOUD_RUN_ONLY = Limits()


def check(value: object, limits: Limits) -> Accelerator | None:
    """The accelerator a request's `accelerator` field asks for (None: absent, the Cloud Run Job), or
    InvalidAccelerator saying what may be asked instead."""
    if value is None:
        return None
    if not limits.types:
        raise InvalidAccelerator("this deployment trains on the trainer job's one GPU only: leave accelerator "
                                 "out, or ask the operator to allow several GPUs (TRAINER_ACCELERATOR_TYPES)")
    if not isinstance(value, dict) or set(value) != {"type", "count"}:
        raise InvalidAccelerator(f'accelerator must be {{"type": ..., "count": ...}}, got {value!r}'[:300])
    kind, count = value["type"], value["count"]
    if kind not in limits.types or kind not in MACHINES:
        raise InvalidAccelerator(f"accelerator type {kind!r} is not offered here; types: "
                                 f"{', '.join(t for t in limits.types if t in MACHINES)}"[:300])
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= limits.max_count:
        raise InvalidAccelerator(f"accelerator count must be an integer from 1 to {limits.max_count} here "
                                 f"(the operator's TRAINER_MAX_ACCELERATORS), got {count!r}"[:300])
    counts = MACHINES[kind][1]
    if count not in counts:
        offered = [n for n in counts if n <= limits.max_count]
        raise InvalidAccelerator(f"one machine has {', '.join(map(str, offered))} {kind} GPUs, not {count}: "
                                 "ask for one of those counts")
    return Accelerator(kind, count)


def batch_refusal(accelerator: Accelerator | None, batch: int) -> str | None:
    """Why `batch` cannot train on the accelerator's GPUs at once, or None. Ultralytics' DDP splits the batch
    across the GPUs and refuses its automatic batch (-1)."""
    if accelerator is None or accelerator.count == 1:
        return None
    if batch == -1:
        return (f"batch -1 (automatic) does not work on {accelerator.count} GPUs: give a batch that is a "
                f"multiple of {accelerator.count}, e.g. {16 * accelerator.count}")
    if batch % accelerator.count:
        return f"batch {batch} does not split across {accelerator.count} GPUs: give a multiple of {accelerator.count}"
    return None


def of_job(job: dict[str, object]) -> Accelerator | None:
    """The accelerator a job document records (start_training wrote it from the checked request)."""
    stored = job.get("accelerator")
    if not isinstance(stored, dict):
        return None
    kind, count = stored.get("type"), stored.get("count")
    if not isinstance(kind, str) or kind not in MACHINES or not isinstance(count, int) \
            or count not in MACHINES[kind][1]:
        return None
    return Accelerator(kind, count)


def gpus_of(job: dict[str, object]) -> int:
    """How many GPUs the job's trainer holds: what its GPU hours count."""
    accelerator = of_job(job)
    return 1 if accelerator is None else accelerator.count
