"""A pool of request threads whose width adapts to how fast their results are used."""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from typing import Any

STOP_WAIT_SECONDS = 5.0


class Workers:
    """Threads that run submitted requests, lowest ``priority`` first.

    Only ``permits`` of them take requests at a time. The user widens that while it waits
    for the results it needs next (a remote API: latency to hide) and narrows it while the
    results are ready before they are needed (a local one: more threads would only contend
    for Python's interpreter lock with the threads validating and writing the pages). Each
    result comes back as the request's ``token`` followed by its outcome: what it returned,
    or the exception it raised."""

    def __init__(self, size: int, *, name: str):
        self._tasks: queue.PriorityQueue = queue.PriorityQueue()
        self._results: queue.Queue = queue.Queue()
        self._order = itertools.count()
        self._stopping = threading.Event()
        self._gate = threading.Condition()
        self.size = size
        self.permits = min(2, size)
        self._running = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
            for n in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(
        self, priority: tuple[int, int], token: tuple[int, ...], request: Callable[[], Any]
    ) -> None:
        self._tasks.put(((*priority, next(self._order)), token, request))

    def next_result(self) -> tuple[Any, ...]:
        return self._results.get()

    def widen(self) -> None:
        with self._gate:
            if self.permits < self.size:
                self.permits += 1
                self._gate.notify()

    def narrow(self) -> None:
        with self._gate:
            self.permits = max(2, self.permits - 1)

    def _work(self) -> None:
        while True:
            with self._gate:
                while self._running >= self.permits and not self._stopping.is_set():
                    self._gate.wait()
                self._running += 1
            try:
                _, token, request = self._tasks.get()
                if request is None or self._stopping.is_set():
                    return
                try:
                    outcome = request()
                except BaseException as error:  # handed to the user, raised there
                    outcome = error
                self._results.put((*token, outcome))
            finally:
                with self._gate:
                    self._running -= 1
                    self._gate.notify()

    def stop(self) -> None:
        """No new requests start; those in flight end on their own (daemon threads)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        with self._gate:
            self._gate.notify_all()
        for _ in self._threads:
            self._tasks.put(((-1, 0, next(self._order)), None, None))
        for thread in self._threads:
            thread.join(timeout=STOP_WAIT_SECONDS / len(self._threads))
