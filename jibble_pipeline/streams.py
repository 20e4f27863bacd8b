"""Streams of pages and frames: read ahead in a thread, closed as soon as they stop.

The API server and the warehouse work while the pipeline's own Python code runs: a
thread that waits for the next pages (the network wait releases the GIL) overlaps that
wait with the work on the pages already received, instead of adding the two.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import TypeVar

Item = TypeVar("Item")
_DONE = object()
STOP_WAIT_SECONDS = 5.0


@contextmanager
def closing_if_possible(stream: object) -> Iterator[None]:
    """Closes ``stream`` on the way out when it has a ``close`` (a generator): its clean-up,
    such as stopping the threads reading ahead for it, runs then, not whenever it is
    garbage-collected."""
    try:
        yield
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def read_ahead(items: Iterator[Item], depth: int = 4) -> Generator[Item, None, None]:
    """The items of ``items`` in order, produced by a thread up to ``depth`` items ahead.

    An exception of the producer is raised here, at the item where it happened. If the
    consumer stops early (an error while writing, a closed generator), the producer stops
    at its next item; the items it already read are dropped. A producer still waiting on
    the network then is not waited for long: it is a daemon thread and stops on its own."""
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        with closing_if_possible(items):
            try:
                for item in items:
                    if not put(item):
                        return
            except BaseException as error:  # handed to the consumer, raised there
                put(_Failure(error))
                return
        put(_DONE)

    producer = threading.Thread(target=produce, name="read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            value = ready.get()
            if value is _DONE:
                return
            if isinstance(value, _Failure):
                raise value.error
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        producer.join(timeout=STOP_WAIT_SECONDS)
