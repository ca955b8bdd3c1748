"""The worker's collector settings for serving."""

from __future__ import annotations

import gc

from proxy import worker


def test_settle_heap_freezes_startup_objects_and_raises_only_the_young_threshold() -> None:
    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 11, 12)
        worker._settle_heap()
        assert gc.get_threshold() == (worker._GC_YOUNG_THRESHOLD, 11, 12)
        assert worker._GC_YOUNG_THRESHOLD > 700
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)
