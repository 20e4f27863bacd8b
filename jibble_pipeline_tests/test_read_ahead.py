"""Pages read ahead in a thread: same items in the same order, errors where they happened,
and a producer that stops when the consumer does."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from jibble_pipeline.streams import read_ahead


def test_items_arrive_in_order_and_the_producer_runs_ahead():
    produced: list[int] = []

    def pages() -> Iterator[int]:
        for number in range(50):
            produced.append(number)
            yield number

    consumed = []
    for item in read_ahead(pages(), depth=3):
        if item == 0:
            deadline = time.monotonic() + 5
            while len(produced) < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(produced) >= 4  # read ahead while the first item was being used
        consumed.append(item)
    assert consumed == list(range(50))


def test_an_error_of_the_producer_is_raised_after_the_items_before_it():
    def pages() -> Iterator[int]:
        yield 1
        yield 2
        raise ConnectionError("the API went away")

    received = []
    with pytest.raises(ConnectionError, match="went away"):
        for item in read_ahead(pages()):
            received.append(item)
    assert received == [1, 2]


def test_the_producer_stops_when_the_consumer_fails():
    produced = 0
    stopped = threading.Event()

    def pages() -> Iterator[int]:
        nonlocal produced
        try:
            while True:
                produced += 1
                yield produced
        finally:
            stopped.set()

    with pytest.raises(RuntimeError, match="write failed"):
        for item in read_ahead(pages(), depth=2):
            if item == 3:
                raise RuntimeError("write failed")
    time.sleep(0.3)
    settled = produced
    time.sleep(0.3)
    assert produced == settled <= 3 + 2 + 1  # what was queued, and no more
    assert stopped.is_set()  # the page generator was closed, not left open
    assert not [t for t in threading.enumerate() if t.name == "read-ahead"]
