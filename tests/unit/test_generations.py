"""The generation guard, on every kind of event history."""
import pytest

from common.domain.generations import is_stale


@pytest.mark.parametrize("generation, held, tombstone, deleting, stale", [
    (5, 0, 0, False, False),   # first finalize
    (5, 5, 0, False, True),    # the same finalize again
    (4, 5, 0, False, True),    # an older generation, late
    (6, 5, 0, False, False),   # an overwrite
    (5, 5, 0, True, False),    # deleting the held generation
    (4, 5, 0, True, True),     # the delete of an overwritten generation
    (6, 5, 0, True, False),    # a delete newer than what is held
    (9, 0, 9, False, True),    # the finalize the delete followed, late
    (9, 0, 9, True, True),     # the same delete again
    (8, 0, 9, False, True),    # anything before the delete
    (10, 0, 9, False, False),  # a new upload after the delete
])
def test_events_at_or_below_what_is_known_are_stale(generation, held, tombstone, deleting, stale):
    assert is_stale(generation, held, tombstone, deleting) is stale


@pytest.mark.parametrize("generation, held, tombstone, deleting, stale", [
    (5, 5, 0, False, False),  # redelivered: its follow-up work runs again
    (4, 5, 0, False, True),
    (9, 0, 9, True, False),
    (8, 0, 9, True, True),
    (8, 0, 9, False, True),
])
def test_reapplying_the_current_generation(generation, held, tombstone, deleting, stale):
    assert is_stale(generation, held, tombstone, deleting, reapply_current=True) is stale


def test_any_order_of_the_same_events_ends_in_the_same_state():
    """Apply finalize 1, finalize 3, delete 3, finalize 5 in every order: the state
    after the applicable ones is always 'generation 5 held'."""
    from itertools import permutations
    events = [(1, False), (3, False), (3, True), (5, False)]
    for order in permutations(events):
        held, tombstone = 0, 0
        for generation, deleting in order:
            if is_stale(generation, held, tombstone, deleting):
                continue
            held, tombstone = (0, max(tombstone, generation)) if deleting else (generation, tombstone)
        assert (held, tombstone) in {(5, 0), (5, 3)}, order
