"""The OData query options Jibble honours: ``$filter``, ``$orderby``, ``$select``, ``$top``,
``$skip`` and ``$count``, parsed against a typed field list and evaluated over dict rows.

Filter literals are unquoted as Jibble writes them (``belongsToDate ge 2025-01-06``,
``time ge 2025-11-03T00:00:00Z``, ``personId eq 5f0c...``); quoted strings, ``null``,
``true``/``false`` and numbers are accepted too. Dates and instants compare as dates and
instants, not as text.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from jibble_pipeline.simulator.fields import FieldType
from jibble_pipeline.simulator.timeformat import instant_ms, utc_text


class ODataError(ValueError):
    """A query option the server cannot honour; answered with HTTP 400 and this message."""


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str
    value: Any  # canonical: str / float / bool / ISO date text / canonical UTC text, or None


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    operand: Node


Node = Comparison | And | Or | Not
Row = Mapping[str, Any]

_COMPARISON_OPERATORS = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_TOKEN = re.compile(
    r"\s*(?:(?P<open>\()|(?P<close>\))|'(?P<quoted>(?:[^']|'')*)'|(?P<word>[^\s()']+))"
)


def _instant_key(value: str) -> str:
    """Canonical UTC text of an instant: equal instants give equal text, order is preserved."""
    if len(value) == 24 and value[10] == "T" and value[23] == "Z":
        return value
    return utc_text(instant_ms(value))


def _date_key(value: str) -> str:
    return value if len(value) == 10 else date.fromisoformat(value[:10]).isoformat()


def _identity(value: Any) -> Any:
    return value


_VALUE_KEYS: dict[FieldType, Callable[[Any], Any]] = {
    FieldType.STRING: _identity,
    FieldType.NUMBER: _identity,
    FieldType.BOOL: _identity,
    FieldType.DATE: _date_key,
    FieldType.DATETIME: _instant_key,
}


# ---------------------------------------------------------------------------- $filter parsing


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise ODataError(f"$filter: cannot read {text[position:].strip()[:40]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        tokens.append((kind, value.replace("''", "'") if kind == "quoted" else value))
        position = match.end()
    return tokens


def _literal(kind: str, text: str, field: str, field_type: FieldType) -> Any:
    if kind == "word" and text.lower() == "null":
        return None
    try:
        if field_type is FieldType.STRING:
            return text
        if field_type is FieldType.NUMBER:
            return float(text)
        if field_type is FieldType.BOOL:
            if text.lower() in ("true", "false"):
                return text.lower() == "true"
            raise ValueError(text)
        if field_type is FieldType.DATE:
            return date.fromisoformat(text).isoformat()
        if field_type is FieldType.DATETIME:
            return utc_text(instant_ms(text))
    except ValueError as exc:
        raise ODataError(
            f"$filter: {text!r} is not a valid {field_type.value} for field {field!r}"
        ) from exc
    raise ODataError(f"$filter: field {field!r} is an object and cannot be compared")


def _refused(field: str, option: str) -> ODataError:
    """A property the tenant does not allow in a query option, worded as ASP.NET OData does."""
    return ODataError(
        f"The query specified in the URI is not valid. The property '{field}' cannot be used "
        f"in the {option} query option."
    )


class _FilterParser:
    """Recursive descent: ``or`` binds loosest, then ``and``, then ``not``, then comparisons."""

    def __init__(self, text: str, fields: Mapping[str, FieldType], refused: Collection[str] = ()):
        self.tokens = _tokenize(text)
        self.position = 0
        self.fields = fields
        self.refused = refused

    def parse(self) -> Node:
        if not self.tokens:
            raise ODataError("$filter is empty")
        node = self._or()
        if self.position != len(self.tokens):
            raise ODataError(f"$filter: unexpected {self.tokens[self.position][1]!r}")
        return node

    def _peek_word(self) -> str | None:
        if self.position < len(self.tokens) and self.tokens[self.position][0] == "word":
            return self.tokens[self.position][1].lower()
        return None

    def _next(self, expected: str) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise ODataError(f"$filter ends where {expected} was expected")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _or(self) -> Node:
        return self._chain("or", self._and, Or)

    def _and(self) -> Node:
        return self._chain("and", self._unary, And)

    def _chain(
        self, word: str, operand: Callable[[], Node], join: Callable[[Node, Node], Node]
    ) -> Node:
        """Operands separated by ``word``, joined from the left."""
        node = operand()
        while self._peek_word() == word:
            self.position += 1
            node = join(node, operand())
        return node

    def _unary(self) -> Node:
        if self._peek_word() == "not":
            self.position += 1
            return Not(self._unary())
        kind, text = self._next("a comparison")
        if kind == "open":
            node = self._or()
            if self._next("')'")[0] != "close":
                raise ODataError("$filter: missing ')'")
            return node
        if kind != "word":
            raise ODataError(f"$filter: expected a field name, got {text!r}")
        return self._comparison(text)

    def _comparison(self, field: str) -> Comparison:
        if field not in self.fields:
            known = ", ".join(sorted(self.fields))
            raise ODataError(f"$filter: unknown field {field!r} (known fields: {known})")
        if field in self.refused:
            raise _refused(field, "$filter")
        kind, op = self._next("an operator")
        if kind != "word" or op.lower() not in _COMPARISON_OPERATORS:
            raise ODataError(f"$filter: expected eq/ne/gt/ge/lt/le after {field!r}, got {op!r}")
        kind, text = self._next("a value")
        if kind not in ("word", "quoted"):
            raise ODataError(f"$filter: expected a value after {field} {op}, got {text!r}")
        return Comparison(field, op.lower(), _literal(kind, text, field, self.fields[field]))


def parse_filter(text: str, fields: Mapping[str, FieldType], refused: Collection[str] = ()) -> Node:
    """``refused``: fields the tenant does not allow in a filter (answered 400)."""
    return _FilterParser(text, fields, refused).parse()


def compile_filter(node: Node, fields: Mapping[str, FieldType]) -> Callable[[Row], bool]:
    """A predicate over rows; a missing key counts as null."""
    if isinstance(node, And):
        left, right = compile_filter(node.left, fields), compile_filter(node.right, fields)
        return lambda row: left(row) and right(row)
    if isinstance(node, Or):
        left, right = compile_filter(node.left, fields), compile_filter(node.right, fields)
        return lambda row: left(row) or right(row)
    if isinstance(node, Not):
        operand = compile_filter(node.operand, fields)
        return lambda row: not operand(row)
    return _compile_comparison(node, _VALUE_KEYS[fields[node.field]])


def _compile_comparison(node: Comparison, key: Callable[[Any], Any]) -> Callable[[Row], bool]:
    field, op, literal = node.field, node.op, node.value
    if literal is None:
        if op == "eq":
            return lambda row: row.get(field) is None
        if op == "ne":
            return lambda row: row.get(field) is not None
        return lambda row: False
    compare = _COMPARISON_OPERATORS[op]
    when_null_or_alien = op == "ne"

    def test(row: Row) -> bool:
        value = row.get(field)
        if value is None:
            return when_null_or_alien
        try:
            return compare(key(value), literal)
        except (TypeError, ValueError):
            return when_null_or_alien

    return test


def date_bounds(node: Node | None, field: str) -> tuple[date | None, date | None]:
    """Inclusive date range outside which ``node`` cannot hold for ``field`` (None: unbounded).

    Lets a query read only the per-date buckets it can match."""
    if node is None or isinstance(node, Not):
        return None, None
    if isinstance(node, And | Or):
        low_a, high_a = date_bounds(node.left, field)
        low_b, high_b = date_bounds(node.right, field)
    if isinstance(node, And):
        low = max((d for d in (low_a, low_b) if d is not None), default=None)
        high = min((d for d in (high_a, high_b) if d is not None), default=None)
        return low, high
    if isinstance(node, Or):
        low = None if low_a is None or low_b is None else min(low_a, low_b)
        high = None if high_a is None or high_b is None else max(high_a, high_b)
        return low, high
    if node.field != field or node.value is None:
        return None, None
    day = date.fromisoformat(node.value)
    one = timedelta(days=1)
    return {
        "eq": (day, day),
        "ge": (day, None),
        "gt": (day + one, None),
        "le": (None, day),
        "lt": (None, day - one),
    }.get(node.op, (None, None))


# --------------------------------------------------------------------- the other query options


def _field_list(option: str, text: str, fields: Mapping[str, FieldType]) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    for name in names:
        if name not in fields:
            raise ODataError(f"{option}: unknown field {name!r}")
    return names


def parse_orderby(
    text: str, fields: Mapping[str, FieldType], orderable: Collection[str] | None = None
) -> list[tuple[str, bool]]:
    """``time asc,id desc`` -> [("time", False), ("id", True)] (the flag means descending).
    ``orderable``: the only properties the tenant sorts by (None: every field)."""
    order: list[tuple[str, bool]] = []
    for item in text.split(","):
        parts = item.split()
        direction = parts[1].lower() if len(parts) == 2 else "asc"
        if not parts or len(parts) > 2 or direction not in ("asc", "desc"):
            raise ODataError(f"$orderby: cannot read {item.strip()!r}")
        name = parts[0]
        if name not in fields:
            raise ODataError(f"$orderby: unknown field {name!r}")
        if fields[name] is FieldType.OBJECT:
            raise ODataError(f"$orderby: field {name!r} is an object and cannot be ordered")
        if orderable is not None and name not in orderable:
            raise _refused(name, "$orderby")
        order.append((name, direction == "desc"))
    return order


def _sort_key(field: str, key: Callable[[Any], Any]) -> Callable[[Row], tuple]:
    """Nulls first (ascending); values a key cannot read sort as text after the readable ones."""

    def sort_key(row: Row) -> tuple:
        value = row.get(field)
        if value is None:
            return (0, "")
        try:
            return (1, key(value))
        except (TypeError, ValueError):
            return (2, str(value))

    return sort_key


def _non_negative(option: str, text: str | None) -> int | None:
    if text is None:
        return None
    if not text.strip().isdigit():
        raise ODataError(f"{option} must be a non-negative integer, got {text!r}")
    return int(text)


@dataclass(frozen=True)
class ODataQuery:
    filter: Node | None
    orderby: list[tuple[str, bool]]
    select: list[str] | None
    top: int | None
    skip: int
    count: bool
    fields: Mapping[str, FieldType]

    @classmethod
    def parse(
        cls,
        params: Mapping[str, str],
        fields: Mapping[str, FieldType],
        *,
        orderable: Collection[str] | None = None,
        unfilterable: Collection[str] = (),
    ) -> ODataQuery:
        """``orderable`` and ``unfilterable``: what the tenant's dialect refuses (400)."""
        filter_text = params.get("$filter") or None
        count_text = (params.get("$count") or "false").strip().lower()
        if count_text not in ("true", "false"):
            raise ODataError(f"$count must be true or false, got {count_text!r}")
        orderby_text = params.get("$orderby")
        select_text = params.get("$select")
        return cls(
            filter=parse_filter(filter_text, fields, unfilterable) if filter_text else None,
            orderby=parse_orderby(orderby_text, fields, orderable) if orderby_text else [],
            select=_field_list("$select", select_text, fields) if select_text else None,
            top=_non_negative("$top", params.get("$top")),
            skip=_non_negative("$skip", params.get("$skip")) or 0,
            count=count_text == "true",
            fields=fields,
        )

    @property
    def result_key(self) -> tuple:
        """What the full (unpaged) result depends on: paging options left out."""
        return (self.filter, tuple(self.orderby), tuple(self.select or ()))

    def date_bounds(self, field: str) -> tuple[date | None, date | None]:
        return date_bounds(self.filter, field)

    def evaluate(self, rows: Iterable[Row]) -> list[Row]:
        """Filtered, ordered and projected rows (no paging)."""
        if self.filter is not None:
            predicate = compile_filter(self.filter, self.fields)
            result = [row for row in rows if predicate(row)]
        else:
            result = list(rows)
        for field, descending in reversed(self.orderby):  # stable sorts, last key first
            key = _VALUE_KEYS[self.fields[field]]
            result.sort(key=_sort_key(field, key), reverse=descending)
        if self.select is not None:
            names = self.select
            result = [{name: row[name] for name in names if name in row} for row in result]
        return result
