"""The one HTTP layer of every outside API: pacing, its share across runs, and the slots
runs hold in Postgres to share an API's limits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from jibble_pipeline.transport import Pacing
from jibble_pipeline.transport.pacing import Pacer, PacingTimeout
from jibble_pipeline.warehouse.api_slots import SlotsBusy, api_slot
from jibble_pipeline_tests.blocking import wait_for


def send(pacer: Pacer, requests: int, threads: int = 4) -> float:
    """Seconds ``requests`` empty requests take through ``pacer`` from ``threads`` threads."""
    remaining = iter(range(requests))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            with pacer.slot(time.monotonic() + 30):
                pass

    started = time.monotonic()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.monotonic() - started


def test_requests_are_spaced_at_the_ceiling_whatever_the_threads():
    assert 1.9 <= send(Pacer(Pacing(max_requests_per_second=10, concurrency=8)), 21) < 2.6


def test_each_run_sharing_the_api_paces_at_its_share():
    sharing = Pacer(Pacing(max_requests_per_second=20, concurrency=8), share=lambda: 2)
    assert 1.9 <= send(sharing, 21) < 2.6  # 10 requests/s: half the limit
    assert sharing.current_rate() == 10


def test_a_429_pauses_every_request_slows_down_and_recovers_gradually():
    pacer = Pacer(Pacing(max_requests_per_second=10, concurrency=8))
    send(pacer, 5)
    slower = pacer.rate_limited(0.5)
    assert slower == pytest.approx(8.0, abs=0.1)
    assert pacer.rate_limited(0.5) is None  # 429s arriving together cut once
    started = time.monotonic()
    with pacer.slot(time.monotonic() + 5):
        assert time.monotonic() - started >= 0.45  # the server's Retry-After, for everyone
    time.sleep(1.0)
    assert 8.1 < pacer.current_rate() < 8.5  # 2 % of the ceiling won back per second


def test_concurrency_is_bounded():
    pacer = Pacer(Pacing(concurrency=2))
    inside, peak, lock = [0], [0], threading.Lock()

    def hold() -> None:
        with pacer.slot(time.monotonic() + 30):
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            time.sleep(0.1)
            with lock:
                inside[0] -= 1

    workers = [threading.Thread(target=hold) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert peak[0] == 2


def test_a_request_without_a_slot_before_its_deadline_times_out():
    pacer = Pacer(Pacing(concurrency=1))
    with (
        pacer.slot(time.monotonic() + 30),
        pytest.raises(PacingTimeout),
        pacer.slot(time.monotonic() + 0.1),
    ):
        pass


# --------------------------------------------------------------------------- Postgres slots

HOLDER = """
import sys, time
from jibble_pipeline.warehouse.api_slots import api_slot
with api_slot(sys.argv[1], "test-api", 2, 10) as held:
    print(held(), flush=True)
    time.sleep(60)
"""


def test_runs_hold_slots_in_postgres_and_a_killed_run_frees_its_own(database_url):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, database_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "1"
        with api_slot(database_url, "test-api", 2, 5) as held:
            assert held() == 2  # this process and the other one
            with (
                pytest.raises(SlotsBusy, match="all 2 slots for calling test-api"),
                api_slot(database_url, "test-api", 2, 1.5),
            ):
                pass
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(10)
            wait_for(lambda: held() == 1, "the killed process's slot freed")
            with api_slot(database_url, "test-api", 2, 5) as again:
                assert again() == 2
    finally:
        holder.kill()
        holder.wait(10)
