"""What `make demo` prints of auto-labelling: a few proposals per image, the most confident, and how many more."""
from __future__ import annotations

from infra.local.demo import PROPOSALS_SHOWN, _proposal_rows


def proposal(confidence: float) -> dict:
    return {"class_name": "tie", "confidence": confidence, "cx": 0.5, "cy": 0.25, "w": 0.125, "h": 0.0625}


def test_an_image_with_a_hundred_proposals_shows_the_most_confident_few_and_counts_the_rest():
    line = _proposal_rows([proposal(i / 100) for i in range(100)])
    assert line.count("tie ") == PROPOSALS_SHOWN == 5
    assert line.startswith("tie 0.99 (0.500 0.250 0.125 0.062), tie 0.98 ")
    assert line.endswith("tie 0.95 (0.500 0.250 0.125 0.062) ... and 95 more")


def test_an_image_with_few_proposals_shows_them_all():
    assert _proposal_rows([proposal(0.3), proposal(0.9)]) == \
        "tie 0.90 (0.500 0.250 0.125 0.062), tie 0.30 (0.500 0.250 0.125 0.062)"
