"""A training request's `accelerator` within the operator's limits (common/domain/accelerators.py), and what
follows from it: the job records it, its GPU hours count each GPU."""
import pytest

from common.domain import accelerators, quotas
from common.domain.accelerators import Accelerator, Limits
from common.domain.training_request import InvalidRequest, validate

BASE = {"dataset": "d", "model": "yolov8n.yaml"}
L4_UP_TO_4 = Limits(("nvidia-l4", "nvidia-h100-80gb"), 4)


def test_no_accelerator_is_the_cloud_run_job_whatever_the_limits():
    assert validate(BASE, "m").accelerator is None
    assert validate(BASE, "m", L4_UP_TO_4).accelerator is None


def test_an_allowed_accelerator_is_kept_with_its_machine():
    request = validate({**BASE, "batch": 64, "accelerator": {"type": "nvidia-l4", "count": 4}}, "m", L4_UP_TO_4)
    assert request.accelerator == Accelerator("nvidia-l4", 4)
    assert request.accelerator.machine_type == "g2-standard-48"
    assert request.accelerator.vertex_type == "NVIDIA_L4"
    assert request.accelerator.stored() == {"type": "nvidia-l4", "count": 4}
    assert "accelerator" not in request.train_args  # never an Ultralytics argument


@pytest.mark.parametrize("value, limits, reason", [
    ({"type": "nvidia-l4", "count": 2}, Limits(), "trains on the trainer job's one GPU only"),
    ({"type": "nvidia-tesla-t4", "count": 2}, L4_UP_TO_4, "type 'nvidia-tesla-t4' is not offered here; "
                                                          "types: nvidia-l4, nvidia-h100-80gb"),
    ({"type": "nvidia-l4", "count": 8}, L4_UP_TO_4, "an integer from 1 to 4 here"),
    ({"type": "nvidia-l4", "count": 0}, L4_UP_TO_4, "an integer from 1 to 4 here"),
    ({"type": "nvidia-l4", "count": True}, L4_UP_TO_4, "an integer from 1 to 4"),
    ({"type": "nvidia-l4", "count": "2"}, L4_UP_TO_4, "an integer from 1 to 4"),
    ({"type": "nvidia-l4", "count": 3}, L4_UP_TO_4, "one machine has 1, 2, 4 nvidia-l4 GPUs, not 3"),
    ({"type": "nvidia-l4"}, L4_UP_TO_4, 'accelerator must be {"type": ..., "count": ...}'),
    ({"type": "nvidia-l4", "count": 2, "zone": "x"}, L4_UP_TO_4, 'accelerator must be {"type"'),
    ("nvidia-l4", L4_UP_TO_4, 'accelerator must be {"type"'),
    ({"type": "made-up", "count": 1}, Limits(("made-up",), 4), "is not offered here"),
])
def test_refused_accelerators_say_what_may_be_asked(value, limits, reason):
    with pytest.raises(InvalidRequest) as refused:
        validate({**BASE, "batch": 16, "accelerator": value}, "m", limits)
    assert reason in str(refused.value)


@pytest.mark.parametrize("batch, reason", [
    (-1, "batch -1 (automatic) does not work on 4 GPUs: give a batch that is a multiple of 4, e.g. 64"),
    (18, "batch 18 does not split across 4 GPUs: give a multiple of 4"),
])
def test_the_batch_must_split_across_the_gpus(batch, reason):
    with pytest.raises(InvalidRequest) as refused:
        validate({**BASE, "batch": batch, "accelerator": {"type": "nvidia-l4", "count": 4}}, "m", L4_UP_TO_4)
    assert str(refused.value) == reason


def test_one_gpu_keeps_the_automatic_batch():
    one = validate({**BASE, "batch": -1, "accelerator": {"type": "nvidia-h100-80gb", "count": 1}}, "m", L4_UP_TO_4)
    assert one.accelerator.machine_type == "a3-highgpu-1g"


def test_a_long_hostile_type_is_refused_in_bounded_words():
    with pytest.raises(InvalidRequest) as refused:
        validate({**BASE, "accelerator": {"type": "x" * 100_000, "count": 1}}, "m", L4_UP_TO_4)
    assert len(str(refused.value)) <= 300


def test_every_machine_has_the_count_of_gpus_it_is_listed_for():
    """The machine types' names say their GPUs where they do (a2-highgpu-4g: 4); G2 and N1 are the table's."""
    for kind, (vertex_type, machines) in accelerators.MACHINES.items():
        assert vertex_type == kind.upper().replace("-", "_")
        for count, machine in machines.items():
            if machine.startswith(("a2-", "a3-")):
                assert machine.endswith(f"-{count}g"), (kind, count, machine)


def test_the_job_records_its_accelerator_and_its_gpu_hours_count_each_gpu():
    day = 100 * quotas.DAY
    one = {"started_at": day, "finished_at": day + 3600}
    four = {**one, "accelerator": {"type": "nvidia-l4", "count": 4}}
    assert accelerators.of_job(four) == Accelerator("nvidia-l4", 4) and accelerators.of_job(one) is None
    assert quotas.hours_used([one, four], now=day + 7200, since=day) == 5.0


@pytest.mark.parametrize("stored", [{"type": "nvidia-l4", "count": 3}, {"type": "nope", "count": 1},
                                    {"type": "nvidia-l4"}, "nvidia-l4"])
def test_a_job_whose_record_is_not_a_machine_counts_one_gpu(stored):
    assert accelerators.of_job({"accelerator": stored}) is None
    assert accelerators.gpus_of({"accelerator": stored}) == 1
