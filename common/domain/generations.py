"""The one rule that orders events for one object: its generation.

Events arrive at least once and in any order. A document remembers, for each
object it indexes, the generation it holds (0: none) and a tombstone: the
generation of the last delete it saw. Against those:

- a finalize at or below the held generation is a duplicate or superseded;
- a delete below the held generation belongs to an overwritten generation;
- any event at or below the tombstone comes after a delete it precedes.

Such an event is stale and changes nothing. `reapply_current` lets the event of
the held generation (or of the tombstone) apply again, for handlers whose
follow-up work (revalidating labels after data.yaml) must redo on redelivery.
"""
from __future__ import annotations


def is_stale(generation: int, held: int, tombstone: int, deleting: bool, reapply_current: bool = False) -> bool:
    if generation < tombstone or (generation == tombstone and not reapply_current):
        return True
    if not held:
        return False
    if deleting or reapply_current:
        return generation < held
    return generation <= held

