"""Complete paging over real HTTP against OData servers that behave in the ways Jibble may:
a silent page cap, ``nextLink`` or not, ``$count`` or not, rows moving under the paging."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from jibble_pipeline.jibble.paging import Collection, PageReader, PagingError
from jibble_pipeline.transport import Pacing, RetryPolicy, open_session
from jibble_pipeline_tests.fake_services import _JsonServer


class ODataServer(_JsonServer):
    """A collection of rows ``{"id": ...}``, paged with ``$skip``/``$top`` under a cap.

    ``next_links``: answer with ``@odata.nextLink`` (and ignore ``$skip`` on those links);
    ``count``: honour ``$count``; ``before_answer(n)``: called before the n-th answer (to
    change the rows while the collection is read)."""

    def __init__(self, rows: int, cap: int, *, next_links=False, count=True, same_page=False):
        super().__init__()
        self.rows: list[dict[str, Any]] = [{"id": f"r{n:04d}"} for n in range(rows)]
        self.cap, self.next_links, self.count, self.same_page = cap, next_links, count, same_page
        self.before_answer: Callable[[int], None] = lambda n: None
        self.answers = 0

    def handle(self, method, path, headers, body):
        with self._lock:
            self.answers += 1
            self.before_answer(self.answers)
            query = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
            skip = 0 if self.same_page else int(query.get("$skip", 0))
            top = min(int(query.get("$top", self.cap)), self.cap)
            answer: dict[str, Any] = {"value": self.rows[skip : skip + top]}
            if self.count and query.get("$count") == "true":
                answer["@odata.count"] = len(self.rows)
            if self.next_links and skip + top < len(self.rows):
                answer["@odata.nextLink"] = f"{self.url}/rows?$skip={skip + top}&$top={top}"
            return 200, answer, {}


def read(server: ODataServer, concurrency: int = 4) -> list[str]:
    session = open_session(
        f"test:{server.url}",
        pacing=Pacing(concurrency=concurrency),
        retry=RetryPolicy(initial_wait_seconds=0.01),
    )

    def get_page(url, params, path):
        return session.http.get(url, params=params).json()

    with session:
        reader = PageReader(get_page, page_size=50, concurrency=concurrency)
        rows = reader.read_all(Collection(f"{server.url}/rows", "/rows", {}))
    return [row["id"] for row in rows]


@pytest.mark.parametrize(
    ("options", "concurrency"),
    [
        ({}, 4),  # $count: windows read at once
        ({"count": False}, 4),  # no $count: pages one after the other until nothing new
        ({"next_links": True}, 4),  # nextLink followed
        ({}, 1),
    ],
)
def test_every_row_once_under_a_silent_cap(options, concurrency):
    with ODataServer(rows=103, cap=10, **options) as server:
        assert read(server, concurrency) == [f"r{n:04d}" for n in range(103)]


def test_a_row_inserted_mid_order_while_paging_is_noticed_and_the_collection_read_again():
    with ODataServer(rows=60, cap=10) as server:
        inserted = threading.Event()

        def insert_once(answer: int) -> None:
            if answer == 3 and not inserted.is_set():  # after the first page and one window
                server.rows.insert(5, {"id": "r0004b"})
                inserted.set()

        server.before_answer = insert_once
        ids = read(server)
    assert inserted.is_set()
    assert sorted(ids) == sorted([f"r{n:04d}" for n in range(60)] + ["r0004b"])
    assert len(ids) == len(set(ids))


def test_rows_added_at_the_end_while_paging_are_left_for_the_next_fetch():
    with ODataServer(rows=45, cap=10) as server:
        server.before_answer = lambda n: server.rows.append({"id": f"new{n}"}) if n > 1 else None
        ids = read(server)
    assert ids == [f"r{n:04d}" for n in range(45)]


def test_a_server_that_ignores_skip_is_refused_rather_than_read_as_complete():
    with (
        ODataServer(rows=40, cap=10, same_page=True) as server,
        pytest.raises(PagingError, match=r"does not honour \$skip"),
    ):
        read(server)


def test_a_collection_that_keeps_moving_is_an_error_not_a_silent_gap():
    with ODataServer(rows=40, cap=10) as server:
        server.before_answer = lambda n: server.rows.insert(0, {"id": f"front{n}"})
        with pytest.raises(PagingError, match="rows kept moving"):
            read(server)
