"""The OData subset list operations accept: ``$filter``, ``$select`` and paging with ``odata.nextLink``.

Filters are parsed once into a predicate over the resource's JSON representation. Supported:
``eq ne gt ge lt le`` on property paths (``executionInfo/result``), string, number, boolean, ``null``
and ``datetime'...'`` literals, ``and``/``or``/``not``, parentheses, and the functions
``startswith``, ``endswith`` and ``substringof``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from airflow_batch_provider.emulator.errors import BatchError, invalid_query

Predicate = Callable[[dict[str, Any]], bool]

MAX_PAGE_SIZE = 1000
#: Bounds on a ``$filter``: its length, how deep parentheses and ``not`` nest, a number's digits.
MAX_FILTER_LENGTH = 8192
MAX_FILTER_DEPTH = 32
MAX_NUMBER_LENGTH = 20
_SKIP_TOKEN = re.compile(r"[0-9]{1,9}")

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<datetime>datetime'[^']*')|(?P<number>-?\d+(?:\.\d+)?(?![\w]))"
    r"|(?P<punct>[(),])|(?P<word>[A-Za-z_$][\w/.$-]*))"
)
_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS = {"startswith", "endswith", "substringof"}
_FRACTION = re.compile(r"(\.\d{6})\d+")


class FilterSyntaxError(ValueError):
    """The ``$filter`` expression is not one the emulator (and the service) understands."""


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def parse_datetime(value: str) -> datetime | None:
    """Parse an ISO 8601 timestamp with up to seven fractional digits; ``None`` if it is not one."""
    text = _FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        if not match:
            raise FilterSyntaxError(f"unexpected text at position {position}: {text[position:]!r}")
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match.group(kind)))
        position = match.end()
    return tokens


Operand = Callable[[dict[str, Any]], Any]


def _path(path: str) -> Operand:
    parts = path.split("/")

    def resolve(document: dict[str, Any]) -> Any:
        value: Any = document
        for part in parts:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    return resolve


def _literal(value: Any) -> Operand:
    return lambda _document: value


def _compare(op: str, left: Any, right: Any) -> bool:
    if isinstance(left, datetime) or isinstance(right, datetime):
        left = parse_datetime(left) if isinstance(left, str) else left
        right = parse_datetime(right) if isinstance(right, str) else right
    elif isinstance(left, str) and isinstance(right, str):
        left, right = left.lower(), right.lower()
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        if op == "gt":
            return bool(left > right)
        if op == "ge":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


class _Nesting:
    """One level of parentheses or ``not``; past :data:`MAX_FILTER_DEPTH` the filter is refused."""

    def __init__(self, parser: _Parser) -> None:
        self.parser = parser

    def __enter__(self) -> None:
        self.parser.depth += 1
        if self.parser.depth > MAX_FILTER_DEPTH:
            raise FilterSyntaxError(f"the expression nests deeper than {MAX_FILTER_DEPTH} levels")

    def __exit__(self, *_: object) -> None:
        self.parser.depth -= 1


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_FILTER_LENGTH:
            raise FilterSyntaxError(f"the expression is longer than {MAX_FILTER_LENGTH} characters")
        self.tokens = _tokenize(text)
        self.position = 0
        self.depth = 0

    def nested(self) -> _Nesting:
        return _Nesting(self)

    def peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise FilterSyntaxError("unexpected end of the expression")
        self.position += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text.lower() != text:
            raise FilterSyntaxError(f"expected {text!r}, found {token.text!r}")

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.lower() == word:
            self.position += 1
            return True
        return False

    def parse(self) -> Predicate:
        predicate = self.parse_or()
        if self.peek() is not None:
            raise FilterSyntaxError(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return predicate

    def parse_or(self) -> Predicate:
        terms = [self.parse_and()]
        while self.keyword("or"):
            terms.append(self.parse_and())
        if len(terms) == 1:
            return terms[0]
        return lambda document: any(term(document) for term in terms)

    def parse_and(self) -> Predicate:
        terms = [self.parse_not()]
        while self.keyword("and"):
            terms.append(self.parse_not())
        if len(terms) == 1:
            return terms[0]
        return lambda document: all(term(document) for term in terms)

    def parse_not(self) -> Predicate:
        if self.keyword("not"):
            with self.nested():
                inner = self.parse_not()
            return lambda document: not inner(document)
        return self.parse_primary()

    def parse_primary(self) -> Predicate:
        token = self.peek()
        if token is None:
            raise FilterSyntaxError("unexpected end of the expression")
        if token.text == "(":
            self.take()
            with self.nested():
                inner = self.parse_or()
            self.expect(")")
            return inner
        if token.kind == "word" and token.text.lower() in _FUNCTIONS:
            following = self.tokens[self.position + 1] if self.position + 1 < len(self.tokens) else None
            if following is not None and following.text == "(":
                return self.parse_function()
        left = self.parse_operand()
        op = self.take()
        if op.kind != "word" or op.text.lower() not in _COMPARISONS:
            raise FilterSyntaxError(f"expected a comparison operator, found {op.text!r}")
        right = self.parse_operand()
        name = op.text.lower()
        return lambda document: _compare(name, left(document), right(document))

    def parse_function(self) -> Predicate:
        name = self.take().text.lower()
        self.expect("(")
        first = self.parse_operand()
        self.expect(",")
        second = self.parse_operand()
        self.expect(")")
        predicate: Predicate
        if name == "substringof":

            def predicate(document: dict[str, Any]) -> bool:
                needle, haystack = first(document), second(document)
                return isinstance(haystack, str) and str(needle).lower() in haystack.lower()

        else:
            method = str.startswith if name == "startswith" else str.endswith

            def predicate(document: dict[str, Any]) -> bool:
                haystack, needle = first(document), second(document)
                return isinstance(haystack, str) and method(haystack.lower(), str(needle).lower())

        # "startswith(id,'x') eq true" is also valid OData.
        if self.keyword("eq"):
            expected = self.parse_operand()({})
            return lambda document: predicate(document) == bool(expected)
        return predicate

    def parse_operand(self) -> Operand:
        token = self.take()
        if token.kind == "string":
            return _literal(token.text[1:-1].replace("''", "'"))
        if token.kind == "datetime":
            value = parse_datetime(token.text[len("datetime'") : -1])
            if value is None:
                raise FilterSyntaxError(f"invalid datetime literal {token.text}")
            return _literal(value)
        if token.kind == "number":
            if len(token.text) > MAX_NUMBER_LENGTH:
                raise FilterSyntaxError(f"a number has more than {MAX_NUMBER_LENGTH} characters")
            return _literal(float(token.text) if "." in token.text else int(token.text))
        if token.kind == "word":
            lowered = token.text.lower()
            if lowered in ("true", "false"):
                return _literal(lowered == "true")
            if lowered == "null":
                return _literal(None)
            return _path(token.text)
        raise FilterSyntaxError(f"unexpected {token.text!r}")


def parse_filter(expression: str | None) -> Predicate | None:
    """Compile ``$filter``; raise the service's 400 ``InvalidQueryParameterValue`` when invalid."""
    if expression is None or not expression.strip():
        return None
    try:
        return _Parser(expression).parse()
    except FilterSyntaxError as err:
        shown = expression if len(expression) <= 256 else expression[:253] + "..."
        raise invalid_query("$filter", shown, f"The $filter clause is invalid: {err}.") from err


def apply_select(document: dict[str, Any], select: str | None) -> dict[str, Any]:
    """Keep only the ``$select`` properties (top level, comma-separated), plus the OData annotations."""
    if not select:
        return document
    wanted = {name.strip() for name in select.split(",") if name.strip()}
    return {key: value for key, value in document.items() if key in wanted or key.startswith("odata.")}


def parse_max_results(value: str | None) -> int:
    if value is None:
        return MAX_PAGE_SIZE
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_PAGE_SIZE:
        raise BatchError(
            400,
            "OutOfRangeQueryParameterValue",
            "A query parameter specified in the request URI is outside the permissible range.",
            {
                "QueryParameterName": "maxresults",
                "QueryParameterValue": value,
                "Reason": "Allowed: 1 to 1000.",
            },
        )
    return number


@dataclass
class ListQuery:
    """The list options of one request: filter, select, page size and where the page starts."""

    filter: str | None = None
    select: str | None = None
    max_results: int = MAX_PAGE_SIZE
    skip: int = 0

    @classmethod
    def from_params(cls, params: dict[str, str]) -> ListQuery:
        skip_token = params.get("$skiptoken")
        skip = 0
        if skip_token:
            if not _SKIP_TOKEN.fullmatch(skip_token):
                raise invalid_query("$skiptoken", skip_token[:64], "The continuation token is not valid.")
            skip = int(skip_token)
        return cls(
            filter=params.get("$filter"),
            select=params.get("$select"),
            max_results=parse_max_results(params.get("maxresults")),
            skip=skip,
        )

    def page(
        self,
        documents: Sequence[dict[str, Any]],
        list_url: str,
        api_version: str,
        metadata_url: str,
    ) -> dict[str, Any]:
        """Filter, page and project ``documents`` into the service's list body."""
        predicate = parse_filter(self.filter)
        matching = [doc for doc in documents if predicate is None or predicate(doc)]
        window = matching[self.skip : self.skip + self.max_results]
        body: dict[str, Any] = {
            "odata.metadata": metadata_url,
            "value": [apply_select(doc, self.select) for doc in window],
        }
        if self.skip + self.max_results < len(matching):
            params = {"api-version": api_version, "maxresults": str(self.max_results)}
            if self.filter:
                params["$filter"] = self.filter
            if self.select:
                params["$select"] = self.select
            params["$skiptoken"] = str(self.skip + self.max_results)
            body["odata.nextLink"] = f"{list_url}?{urlencode(params)}"
        return body
