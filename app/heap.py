"""Long-lived objects kept out of the garbage collector's way.

A server process holds a few hundred thousand objects for its whole life: the modules,
the app and its routes, the areas indexed for routing. CPython's collector looks at
every one of them on each full collection: under load on PostgreSQL (``bench/intake.py``)
that was a pause of a tenth of a second several times a minute, during which no request
moved, and the p99 of intake was 150 ms for a p50 of 30. Frozen, they are never looked
at again; objects freed by their reference counts are freed as before.

Only at the start, when no request is in flight: a copy of the areas reloaded later
(after an area import) is not frozen, since freezing then would freeze what requests
hold at that moment too, and their cycles would never be collected.

The youngest generation is collected every 10,000 net allocations rather than 700: a
request's objects mostly die by their reference counts, and what a collection looks at
are the survivors — the requests in flight — again and again.
"""

import gc

YOUNG_THRESHOLD = 10_000


def freeze() -> None:
    """Collect what is garbage now, then freeze every object left (a server's start)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
