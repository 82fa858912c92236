"""Read ahead: the items of an iterator produced on a background thread while the caller works."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["prefetch"]

_T = TypeVar("_T")
_DONE = object()


class _Raised:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(items: Iterable[_T], size: int = 2) -> Iterator[_T]:
    """The items of `items`, in order, read up to `size` ahead on a background thread.

    Meant for batches read from disk (h5py, memory-mapped files) and put on the devices: the
    next batches are read while the current step runs (XLA releases the GIL while it
    computes). The order is the order of `items`, so a seeded batch order stays
    reproducible. An exception raised while producing an item is raised again here, at that
    item. Closing the returned generator (or dropping it) stops the thread after at most one
    more item.

    **Arguments:**

    - `items`: any iterable; it is iterated on the background thread only.
    - `size`: how many items may wait, read but not yet taken; ``0`` iterates `items` in the
      caller's thread (no thread).

    **Returns:** a generator of the same items.
    """
    if size < 0:
        raise ValueError(f"prefetch: size must be >= 0, got {size}")
    if size == 0:
        yield from items
        return
    waiting: queue.Queue = queue.Queue(maxsize=size)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as e:  # handed to the consumer, raised there
            put(_Raised(e))
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name="sciops-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = waiting.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join(timeout=5.0)
