"""Reading OData collections completely, several pages at once (docs/rules.md, Jibble API: Paging).

Jibble caps pages silently below the ``$top`` asked for and rarely sends ``@odata.nextLink``.
A collection is read in three steps:

1. The first page asks ``$count=true``. It tells how many rows there are (N) and, by how many
   rows it holds, the server's page cap (c).
2. The rest is read as windows of c rows, as many at once as the concurrency allows. Each
   window starts one row early: its first row must be the previous window's last. If rows
   shifted while the collection was read (an entry inserted mid-order, or moved to another
   work date), the check fails and the collection is read again instead of losing a row.
3. Without a count, pages follow one another, ``$skip`` advanced by the rows received (never
   by ``$top``), each re-reading the previous page's last row, until a page brings nothing
   new. A ``nextLink`` is followed whenever the server sends one.

Rows added while a collection is read sort last (``createdAt`` order), beyond the count taken
first: the next fetch reads them. Collections are yielded whole and in the order asked, at
most ``ahead`` of them held at once, so memory stays bounded whatever the range.
"""

from __future__ import annotations

import functools
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urljoin

from jibble_pipeline.jibble.workers import Workers

MAX_READS = 3  # a collection that keeps changing under the paging is read this often at most

GetPage = Callable[[str, Mapping[str, Any] | None, str], dict]  # (url, params, path) -> body


class PagingError(RuntimeError):
    """A collection cannot be read completely; the message says why."""


class _Shifted(Exception):
    """Rows moved while the collection was being read."""


@dataclass(frozen=True)
class Collection:
    """One OData query: ``query`` holds ``$filter``/``$orderby`` (paging options are added
    here). ``key`` is handed back with the rows (e.g. the work date a query reads)."""

    url: str
    path: str
    query: Mapping[str, str]
    key: Any = None


@dataclass
class _Head:
    rows: list[dict]
    count: int | None
    next_link: str | None


@dataclass
class _Read:
    """A collection being read: its first page, then its windows."""

    seq: int
    collection: Collection
    reads: int = 1
    parts: dict[int, list[dict]] = field(default_factory=dict)
    waiting: int = 0
    overlap: bool = True
    rows: list[dict] | None = None  # set once the collection is complete


def _same_row(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict) and a.get("id") is not None:
        return a.get("id") == b.get("id")
    return a == b


class PageReader:
    """Reads collections through ``get_page`` with ``concurrency`` requests at once."""

    def __init__(self, get_page: GetPage, *, page_size: int, concurrency: int):
        if page_size < 1 or concurrency < 1:
            raise ValueError("page_size and concurrency must be at least 1")
        self._get_page = get_page
        self.page_size = page_size
        self.concurrency = concurrency

    def read_all(self, collection: Collection) -> list[dict]:
        """Every row of one collection."""
        for _, rows in self.read([collection]):
            return rows
        raise AssertionError("unreachable")

    def read(
        self, collections: Iterable[Collection], ahead: int | None = None
    ) -> Iterator[tuple[Collection, list[dict]]]:
        """Each collection with all its rows, in the order given; up to ``ahead`` (default:
        the concurrency) read at once, fewer while fewer requests in flight are enough.
        Closing the iterator stops the requests."""
        workers = Workers(self.concurrency, name="page-reader")
        source = iter(collections)
        opened: deque[_Read] = deque()
        by_seq: dict[int, _Read] = {}
        limit = ahead or self.concurrency
        numbers = itertools.count()
        waits = 0  # results waited for since the last collection was handed over
        try:
            while True:
                # As many collections open as there are requests to keep in flight: no more
                # rows waiting in memory than the work in progress needs.
                while len(opened) < min(limit, workers.permits + 1):
                    collection = next(source, None)
                    if collection is None:
                        break
                    new = _Read(seq=next(numbers), collection=collection)
                    by_seq[new.seq] = new
                    opened.append(new)
                    self._start(workers, new)
                if not opened:
                    return
                first = opened[0]
                if first.rows is not None:
                    opened.popleft()
                    del by_seq[first.seq]
                    if not waits and opened and opened[0].rows is not None:
                        workers.narrow()  # pages are ready before they are needed
                    waits = 0
                    yield first.collection, first.rows
                    continue
                waits += 1
                if waits % 2 == 0:
                    workers.widen()  # waiting for the pages needed next
                read_seq, reads, part, outcome = workers.next_result()
                read = by_seq.get(read_seq)
                if read is None or read.reads != reads:
                    continue  # a part of an earlier reading of a collection read again
                if isinstance(outcome, _Shifted):
                    self._read_again(workers, read)
                elif isinstance(outcome, BaseException):
                    workers.stop()
                    # Collections read completely before the failure are still handed over.
                    while opened and opened[0].rows is not None:
                        done = opened.popleft()
                        yield done.collection, cast(list[dict], done.rows)
                    raise outcome
                elif part == 0:
                    self._planned(workers, read, outcome)
                else:
                    self._landed(workers, read, part, outcome)
        finally:
            workers.stop()

    # ---------------------------------------------------------------------- planning

    def _start(self, workers: Workers, read: _Read) -> None:
        _submit(workers, read, 0, functools.partial(self._head, read.collection))

    def _read_again(self, workers: Workers, read: _Read) -> None:
        if read.reads >= MAX_READS:
            raise PagingError(
                f"GET {read.collection.path}: rows kept moving while the collection was read "
                f"({MAX_READS} attempts); try again later"
            )
        read.reads += 1
        read.parts.clear()
        read.waiting = 0
        self._start(workers, read)

    def _planned(self, workers: Workers, read: _Read, head: _Head) -> None:
        """The first page is in: the collection is complete, or its remaining windows (or
        its sequential pages) are requested."""
        rows, count, collection = head.rows, head.count, read.collection
        read.parts[0] = rows
        if not rows or (count is not None and count <= len(rows) and not head.next_link):
            read.rows = rows
            return
        cap = len(rows)
        overlap = read.overlap = cap >= 2 and not head.next_link
        read.waiting = 1
        if head.next_link:
            _submit(workers, read, 1, lambda: self._follow(collection, head.next_link))
        elif count is None:
            start = cap - 1 if overlap else cap
            _submit(workers, read, 1, lambda: self._span(collection, start, None, overlap))
        else:
            windows = _windows(cap, count, overlap)
            read.waiting = len(windows)
            for part, (start, stop) in enumerate(windows, start=1):
                _submit(
                    workers,
                    read,
                    part,
                    functools.partial(self._window, collection, start, stop, overlap),
                )

    def _landed(self, workers: Workers, read: _Read, part: int, rows: list[dict]) -> None:
        read.parts[part] = rows
        read.waiting -= 1
        if read.waiting:
            return
        parts = [read.parts[i] for i in sorted(read.parts)]
        if read.overlap:
            for before, after in itertools.pairwise(parts):
                if not after or not _same_row(after[0], before[-1]):
                    self._same_page_check(read, parts[0], after)
                    self._read_again(workers, read)
                    return
            parts = [parts[0], *(p[1:] for p in parts[1:])]
        read.rows = [row for part_rows in parts for row in part_rows]

    def _same_page_check(self, read: _Read, head: list[dict], window: list[dict]) -> None:
        if window and head and _same_row(window[0], head[0]):
            raise PagingError(
                f"GET {read.collection.path}: the server returned the first page again for a "
                "later $skip; it does not honour $skip, so the collection cannot be read "
                "completely"
            )

    # ---------------------------------------------------------------------- requests

    def _page(self, collection: Collection, skip: int, top: int, count: bool = False) -> dict:
        params: dict[str, Any] = {**collection.query, "$top": top, "$skip": skip}
        if count:
            params["$count"] = "true"
        return self._get_page(collection.url, params, collection.path)

    def _head(self, collection: Collection) -> _Head:
        body = self._page(collection, 0, self.page_size, count=True)
        count = body.get("@odata.count")
        return _Head(
            rows=_rows(body, collection),
            count=count if isinstance(count, int) and not isinstance(count, bool) else None,
            next_link=body.get("@odata.nextLink") or None,
        )

    def _window(self, collection: Collection, start: int, stop: int, overlap: bool) -> list:
        rows = self._span(collection, start, stop, overlap)
        if len(rows) != stop - start:
            raise _Shifted()  # the collection shrank while it was read
        return rows

    def _span(self, collection: Collection, start: int, stop: int | None, overlap: bool) -> list:
        """Rows at positions [start, stop) (``stop`` None: to the end). With ``overlap``,
        every request after the first re-reads the last row already received."""
        rows: list[dict] = []
        while stop is None or start + len(rows) < stop:
            recheck = 1 if overlap and rows else 0
            skip = start + len(rows) - recheck
            top = self.page_size if stop is None else min(self.page_size, stop - skip)
            page = _rows(self._page(collection, skip, top), collection)[:top]
            if recheck:
                if not page or not _same_row(page[0], rows[-1]):
                    raise _Shifted()
                page = page[1:]
            if not page:
                break
            rows.extend(page)
        return rows

    def _follow(self, collection: Collection, link: str | None) -> list[dict]:
        rows: list[dict] = []
        seen: set[str] = set()
        while link:
            if link in seen:
                raise PagingError(f"GET {collection.path}: the server sent the same nextLink twice")
            seen.add(link)
            body = self._get_page(urljoin(collection.url, link), None, collection.path)
            page = _rows(body, collection)
            if not page:
                break
            rows.extend(page)
            link = body.get("@odata.nextLink") or None
        return rows


def _windows(cap: int, count: int, overlap: bool) -> list[tuple[int, int]]:
    """Positions [start, stop) of the windows after a first page of ``cap`` rows; with
    ``overlap`` each starts at the previous one's last row."""
    step = cap - 1 if overlap else cap
    start = cap - 1 if overlap else cap
    windows = []
    while start + (1 if overlap else 0) < count:
        windows.append((start, min(start + cap, count)))
        start += step
    return windows


def _rows(body: dict, collection: Collection) -> list:
    rows = body.get("value")
    if not isinstance(rows, list):
        raise PagingError(f"GET {collection.path}: the answer has no 'value' list")
    return rows


def _submit(workers: Workers, read: _Read, part: int, request: Callable[[], Any]) -> None:
    """A request of ``read``: the earliest collection's, and its first part, go first."""
    workers.submit((read.seq, part), (read.seq, read.reads, part), request)
