"""Listing blobs: one List Blobs request per page, read for the few properties the hook uses.

The storage SDK's ``list_blobs`` turns every property of every listed blob into models, through its
generic XML deserializer: about 0.2 ms of CPU per blob, several times what the service takes to list
it. The hook only needs each blob's name, size, ``Content-MD5`` and last-modified time, so it sends
the same List Blobs request itself and reads those four while the XML is parsed, without building an
element tree (a tree of 2,000 blobs is some 40,000 objects, enough to set off a full collection of
the garbage collector in a process as big as an Airflow worker, which alone can take 100 ms).

The request runs through the SDK client's own pipeline (``_pipeline``, which the SDK hands from a
service client to its container clients), so authentication (shared key, SAS or Entra ID), retries,
the transport and any extra policies of the hook apply exactly as to the SDK's own calls. The
response is streamed, so that the pipeline does not parse it into a tree either; a body cut off
while it arrives is asked for again (up to three attempts in all). Should a later SDK release drop
``_pipeline``, the SDK's ``list_blobs`` is used instead.
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote

from azure.core.exceptions import (
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    IncompleteReadError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.rest import HttpRequest

#: Blobs per List Blobs page: the service's maximum, so a listing needs as few round trips as possible.
LIST_PAGE_SIZE = 5000

#: Attempts at reading one page's body when the connection breaks while it arrives (the pipeline's
#: retry policy has already retried failures before the response began).
_BODY_ATTEMPTS = 3

#: Storage error codes the SDK raises as ``ResourceNotFoundError`` / ``ClientAuthenticationError``.
_NOT_FOUND_CODES = frozenset({"ContainerNotFound", "ResourceNotFound", "BlobNotFound"})
_AUTHENTICATION_CODES = frozenset({"AuthenticationFailed", "InvalidAuthenticationInfo"})


@dataclass(frozen=True)
class BlobInfo:
    """A listed blob: name, size and the MD5 the service holds for it (``None`` when unknown).

    :param name: The blob name.
    :param size: Its size in bytes.
    :param content_md5: The MD5 the service holds, or ``None``.
    :param last_modified: When it was last written.
    """

    name: str
    size: int
    content_md5: bytes | None
    last_modified: datetime | None = None


@dataclass(frozen=True)
class ListingPage:
    """One page of a listing, and the marker of the next page (``None`` after the last).

    :param blobs: The blobs of the page.
    :param next_marker: The marker of the next page, ``None`` after the last.
    """

    blobs: list[BlobInfo]
    next_marker: str | None


def parse_listing_page(body: bytes) -> ListingPage:
    """Read the blobs of one List Blobs response body (``EnumerationResults``).

    A name the service had to percent-encode (``<Name Encoded="true">``, for characters XML cannot
    carry) is decoded, as the SDK does. An empty or missing ``Content-MD5`` gives ``None``.
    """
    reader = _ListingReader()
    parser = ElementTree.XMLParser(target=reader)
    try:
        parser.feed(body)
        parser.close()
    except ElementTree.ParseError as err:
        raise DecodeError(f"The List Blobs response is not valid XML: {err}") from None
    if reader.root != "EnumerationResults":
        raise DecodeError(f"The List Blobs response is {reader.root!r}, not 'EnumerationResults'.")
    return ListingPage(blobs=reader.blobs, next_marker=reader.next_marker)


#: The elements whose text is read: the blob's name, three of its properties and the next marker.
_PROPERTIES = frozenset({"Content-Length", "Content-MD5", "Last-Modified"})
_WANTED = _PROPERTIES | {"Name", "NextMarker"}


class _ListingReader:
    """An ElementTree parser target that keeps the text of the few elements it needs, and no tree.

    Elements are recognised by their place: ``EnumerationResults/Blobs/Blob/Name``,
    ``.../Blob/Properties/<property>`` and ``EnumerationResults/NextMarker``. Most elements are
    none of these, so that test comes first and costs one set lookup. Every piece of text goes to
    one list by ``list.append`` itself (no Python call per piece); a wanted element's text is the
    part of it that arrived between its start and its end.
    """

    def __init__(self) -> None:
        self.root = ""
        self.blobs: list[BlobInfo] = []
        self.next_marker: str | None = None
        self._depth = 0
        self._in_blobs = False  # inside EnumerationResults/Blobs
        self._in_blob = False  # inside .../Blobs/Blob
        self._in_properties = False  # inside .../Blob/Properties
        self._pieces: list[str] = []  # text since the current blob began
        self.data = self._pieces.append
        self._text_depth = 0  # depth of the wanted element being read (0: none)
        self._text_from = 0  # where its text begins in ``_pieces``
        self._fields: dict[str, str] = {}  # of the blob being read
        self._encoded_name = False
        self._dates: dict[str, datetime | None] = {}  # blobs written in the same second share the text

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self._depth = depth = self._depth + 1
        if tag in _WANTED:
            if self._text_depth:
                return  # an element inside a wanted one: its text is part of the wanted text
            if (
                (depth == 5 and self._in_properties and tag in _PROPERTIES)
                or (depth == 4 and self._in_blob and tag == "Name")
                or (depth == 2 and tag == "NextMarker")
            ):
                self._text_depth, self._text_from = depth, len(self._pieces)
                if tag == "Name":
                    self._encoded_name = attrs.get("Encoded", "").lower() == "true"
        elif depth == 4:
            self._in_properties = self._in_blob and tag == "Properties"
        elif depth == 3:
            self._in_blob = self._in_blobs and tag == "Blob"
        elif depth == 2:
            self._in_blobs = tag == "Blobs"
        elif depth == 1:
            self.root = tag

    def end(self, tag: str) -> None:
        depth = self._depth
        self._depth = depth - 1
        if self._text_depth:
            if depth != self._text_depth:
                return  # the end of an element inside the wanted one
            value = "".join(self._pieces[self._text_from :])
            self._text_depth = 0
            if depth == 2:
                self.next_marker = value or None
            else:
                self._fields[tag] = value
        elif depth == 4:
            self._in_properties = False
        elif depth == 3 and self._in_blob:
            self._in_blob = False
            self.blobs.append(self._blob(self._fields))
            self._fields = {}
            self._encoded_name = False
            self._pieces.clear()
        elif depth == 2:
            self._in_blobs = False

    def close(self) -> None:
        return None

    def _blob(self, fields: dict[str, str]) -> BlobInfo:
        if "Name" not in fields:
            raise DecodeError("A blob in the List Blobs response has no name.")
        name = unquote(fields["Name"]) if self._encoded_name else fields["Name"]
        modified = fields.get("Last-Modified")
        if modified and modified not in self._dates:
            self._dates[modified] = _http_date(modified)
        return BlobInfo(
            name=name,
            size=int(fields.get("Content-Length") or 0),
            content_md5=_md5(fields.get("Content-MD5")),
            last_modified=self._dates[modified] if modified else None,
        )


def _md5(text: str | None) -> bytes | None:
    if not text:
        return None
    try:
        return base64.b64decode(text, validate=True) or None
    except (binascii.Error, ValueError):
        return None  # an MD5 that cannot be read is an unknown MD5: the file is sent again


def _http_date(text: str) -> datetime | None:
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None


def listing_url(container_url: str, prefix: str, marker: str | None, page_size: int) -> str:
    """The List Blobs URL of a container, keeping any SAS query the container URL carries."""
    query = f"restype=container&comp=list&maxresults={page_size}"
    if prefix:
        query += f"&prefix={quote(prefix, safe='')}"
    if marker:
        query += f"&marker={quote(marker, safe='')}"
    return f"{container_url}{'&' if '?' in container_url else '?'}{query}"


def listing_error(response: Any) -> HttpResponseError:
    """The exception the SDK would raise for a failed List Blobs response.

    The storage error code (``x-ms-error-code``) goes on ``error_code``, as the SDK sets it; the
    message has the status and code only, never the request URL (which may carry a SAS).
    """
    status = response.status_code
    code = response.headers.get("x-ms-error-code") or ""
    kind: type[HttpResponseError] = HttpResponseError
    if status == 404 or code in _NOT_FOUND_CODES:
        kind = ResourceNotFoundError
    elif status == 401 or code in _AUTHENTICATION_CODES:
        kind = ClientAuthenticationError
    error = kind(message=f"List Blobs failed: HTTP {status}{f' ({code})' if code else ''}", response=response)
    error.error_code = code or None  # type: ignore[attr-defined]  # set as the storage SDK sets it
    return error


async def aiter_listing_pages(
    container_client: Any, prefix: str, *, page_size: int = LIST_PAGE_SIZE
) -> AsyncIterator[list[BlobInfo]]:
    """The blobs under ``prefix`` of an asynchronous ``ContainerClient``, one list per page.

    Raises what the SDK raises: ``ResourceNotFoundError`` for a missing container,
    ``ClientAuthenticationError`` or ``HttpResponseError`` (with ``error_code``) otherwise.
    """
    pipeline = getattr(container_client, "_pipeline", None)
    if pipeline is None or not hasattr(pipeline, "run"):
        async for sdk_page in _aiter_sdk_pages(container_client, prefix, page_size):
            yield sdk_page
        return
    marker: str | None = None
    while True:
        url = listing_url(container_client.url, prefix, marker, page_size)
        page = parse_listing_page(await _read_listing(pipeline, url, container_client.api_version))
        yield page.blobs
        if page.next_marker is None:
            return
        marker = page.next_marker


async def _read_listing(pipeline: Any, url: str, api_version: str) -> bytes:
    """One List Blobs response body; a body cut off on its way is asked for again (a few times)."""
    for attempt in range(1, _BODY_ATTEMPTS + 1):
        request = HttpRequest("GET", url, headers={"x-ms-version": api_version, "Accept": "application/xml"})
        response = (await pipeline.run(request, stream=True)).http_response
        try:
            body: bytes = await response.read()
        except (IncompleteReadError, ServiceRequestError, ServiceResponseError):
            if attempt == _BODY_ATTEMPTS:
                raise
            continue
        finally:
            await response.close()
        if response.status_code != 200:
            raise listing_error(response)
        return body
    raise AssertionError("unreachable")  # pragma: no cover


async def _aiter_sdk_pages(
    container_client: Any, prefix: str, page_size: int
) -> AsyncIterator[list[BlobInfo]]:
    """The same pages through the SDK's ``list_blobs`` (slower; for SDKs without ``_pipeline``)."""
    pages = container_client.list_blobs(name_starts_with=prefix or None, results_per_page=page_size)
    async for page in pages.by_page():
        yield [blob_info_from_properties(item) async for item in page]


def blob_info_from_properties(item: Any) -> BlobInfo:
    """A :class:`BlobInfo` from the SDK's ``BlobProperties``."""
    md5 = item.content_settings.content_md5 if item.content_settings else None
    return BlobInfo(
        name=item.name,
        size=int(item.size or 0),
        content_md5=bytes(md5) if md5 else None,
        last_modified=item.last_modified,
    )
