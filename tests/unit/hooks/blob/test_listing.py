"""Reading List Blobs responses: the XML reader, the request URL, error mapping and paging."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone
from typing import Any

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    IncompleteReadError,
    ResourceNotFoundError,
)

from airflow_batch_provider.hooks.blob import listing
from airflow_batch_provider.hooks.blob.listing import BlobInfo, parse_listing_page

MD5_A = hashlib.md5(b"a").digest()


def enumeration(blobs: str, next_marker: str = "") -> bytes:
    marker = f"<NextMarker>{next_marker}</NextMarker>" if next_marker else "<NextMarker />"
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<EnumerationResults ServiceEndpoint="https://acct.blob.core.windows.net/" ContainerName="c">'
        f"<Prefix>p/</Prefix><MaxResults>5000</MaxResults><Blobs>{blobs}</Blobs>{marker}"
        "</EnumerationResults>"
    ).encode()


def blob(name: str, size: int, md5: str | None = None, *, encoded: bool = False, extra: str = "") -> str:
    name_tag = '<Name Encoded="true">' if encoded else "<Name>"
    md5_tag = "<Content-MD5 />" if md5 is None else f"<Content-MD5>{md5}</Content-MD5>"
    return (
        f"<Blob>{name_tag}{name}</Name><Properties>"
        "<Creation-Time>Wed, 25 Nov 2026 09:34:48 GMT</Creation-Time>"
        "<Last-Modified>Wed, 25 Nov 2026 09:34:48 GMT</Last-Modified><Etag>0x1</Etag>"
        f"<Content-Length>{size}</Content-Length><Content-Type>text/plain</Content-Type>{md5_tag}"
        f"<BlobType>BlockBlob</BlobType></Properties>{extra}</Blob>"
    )


# -- the XML reader -------------------------------------------------------------------------------------


def test_reads_name_size_md5_and_last_modified() -> None:
    page = parse_listing_page(enumeration(blob("p/a.txt", 1, base64.b64encode(MD5_A).decode())))
    assert page.blobs == [
        BlobInfo(
            name="p/a.txt",
            size=1,
            content_md5=MD5_A,
            last_modified=datetime(2026, 11, 25, 9, 34, 48, tzinfo=timezone.utc),
        )
    ]
    assert page.next_marker is None


def test_missing_empty_or_unreadable_md5_is_unknown() -> None:
    without = blob("p/none", 3).replace("<Content-MD5 />", "")
    page = parse_listing_page(enumeration(without + blob("p/empty", 3) + blob("p/bad", 3, "not base64!")))
    assert [(item.name, item.content_md5) for item in page.blobs] == [
        ("p/none", None),
        ("p/empty", None),
        ("p/bad", None),
    ]


def test_escaped_and_percent_encoded_names_are_decoded() -> None:
    page = parse_listing_page(
        enumeration(
            blob("p/a &amp; b &lt;c&gt; &#233;t&#xE9;.txt", 1)
            + blob("p/bad%EF%BF%BEchar", 2, encoded=True)
            + blob("p/plain%20stays", 3)
        )
    )
    assert [item.name for item in page.blobs] == [
        "p/a & b <c> \u00e9t\u00e9.txt",
        "p/bad\ufffechar",
        "p/plain%20stays",
    ]


def test_next_marker_and_paging_fields() -> None:
    page = parse_listing_page(enumeration(blob("p/a", 1), next_marker="2!68!MDAwMDA&amp;x"))
    assert page.next_marker == "2!68!MDAwMDA&x"
    assert parse_listing_page(enumeration("")).blobs == []


def test_elements_elsewhere_are_not_taken_for_the_blob_fields() -> None:
    metadata = "<Metadata><Name>not-the-name</Name><Content-Length>999</Content-Length></Metadata>"
    tags = "<Tags><TagSet><Tag><Key>Name</Key><Value>x</Value></Tag></TagSet></Tags>"
    page = parse_listing_page(enumeration(blob("p/real", 7, extra=metadata + tags)))
    assert [(item.name, item.size) for item in page.blobs] == [("p/real", 7)]


def test_markup_inside_a_field_is_part_of_its_text() -> None:
    page = parse_listing_page(enumeration("<Blob><Name>p/<b>x</b>y</Name><Properties /></Blob>"))
    assert [(item.name, item.size, item.content_md5) for item in page.blobs] == [("p/xy", 0, None)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<EnumerationResults><Blobs><Blob>", "not valid XML"),
        (b"<Error><Code>InternalError</Code></Error>", "not 'EnumerationResults'"),
        (enumeration("<Blob><Properties /></Blob>"), "has no name"),
    ],
)
def test_bad_responses_are_decode_errors(body: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse_listing_page(body)


# -- request and errors ---------------------------------------------------------------------------------


def test_listing_url_keeps_the_sas_and_quotes_prefix_and_marker() -> None:
    url = listing.listing_url("https://a.blob.core.windows.net/c?sv=1&sig=abc%2B", "in/a b+&", "m/1=", 7)
    assert url == (
        "https://a.blob.core.windows.net/c?sv=1&sig=abc%2B&restype=container&comp=list&maxresults=7"
        "&prefix=in%2Fa%20b%2B%26&marker=m%2F1%3D"
    )
    assert listing.listing_url("http://h/acct/c", "", None, 5000) == (
        "http://h/acct/c?restype=container&comp=list&maxresults=5000"
    )


class FakeResponse:
    """Just enough of azure.core.rest.AsyncHttpResponse for the listing."""

    def __init__(self, status: int, body: bytes = b"", code: str = "", fail_reads: int = 0) -> None:
        self.status_code = status
        self.reason = "reason"
        self.headers = {"x-ms-error-code": code} if code else {}
        self.content_type = "application/xml"
        self._body = body
        self._fail_reads = fail_reads
        self.closed = False

    async def read(self) -> bytes:
        if self._fail_reads:
            self._fail_reads -= 1
            raise IncompleteReadError("connection closed while the body arrived")
        return self._body

    def text(self, encoding: str | None = None) -> str:
        return self._body.decode()

    def body(self) -> bytes:
        return self._body

    async def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (404, "ContainerNotFound", ResourceNotFoundError),
        (403, "AuthenticationFailed", ClientAuthenticationError),
        (403, "AuthorizationPermissionMismatch", HttpResponseError),
        (503, "ServerBusy", HttpResponseError),
    ],
)
def test_errors_are_the_sdk_exceptions_with_their_code(status: int, code: str, kind: type) -> None:
    error = listing.listing_error(FakeResponse(status, b"<Error><Code>x</Code></Error>", code))
    assert type(error) is kind
    assert error.status_code == status
    assert error.error_code == code  # type: ignore[attr-defined]
    assert "sig=" not in str(error)


class FakePipeline:
    """Answers each ``run`` with the next canned response and records the URLs asked for."""

    def __init__(self, responses: list[FakeResponse]) -> None:
        self.responses = responses
        self.urls: list[str] = []
        self.options: list[dict[str, Any]] = []

    async def run(self, request: Any, **options: Any) -> Any:
        self.urls.append(request.url)
        self.options.append(options)
        response = self.responses.pop(0)
        return type("PipelineResponse", (), {"http_response": response})()


class FakeContainerClient:
    url = "https://a.blob.core.windows.net/c?sv=1&sig=s"
    api_version = "2025-05-05"

    def __init__(self, pipeline: FakePipeline) -> None:
        self._pipeline = pipeline


async def test_pages_follow_the_next_marker_through_the_clients_pipeline() -> None:
    pipeline = FakePipeline(
        [
            FakeResponse(200, enumeration(blob("p/a", 1), next_marker="p/a")),
            FakeResponse(200, enumeration(blob("p/b", 2))),
        ]
    )
    pages = [
        page async for page in listing.aiter_listing_pages(FakeContainerClient(pipeline), "p/", page_size=1)
    ]
    assert [[item.name for item in page] for page in pages] == [["p/a"], ["p/b"]]
    assert "marker=" not in pipeline.urls[0] and pipeline.urls[1].endswith("&prefix=p%2F&marker=p%2Fa")
    assert all(url.startswith(FakeContainerClient.url + "&") for url in pipeline.urls)
    assert all(options == {"stream": True} for options in pipeline.options)


async def test_a_body_cut_off_is_asked_for_again_then_given_up() -> None:
    pipeline = FakePipeline([FakeResponse(200, enumeration(blob("p/a", 1)), fail_reads=1)] * 2)
    pages = [page async for page in listing.aiter_listing_pages(FakeContainerClient(pipeline), "p/")]
    assert [item.name for item in pages[0]] == ["p/a"] and len(pipeline.urls) == 2

    broken = FakePipeline([FakeResponse(200, b"", fail_reads=1) for _ in range(3)])
    with pytest.raises(IncompleteReadError):
        [page async for page in listing.aiter_listing_pages(FakeContainerClient(broken), "p/")]
    assert len(broken.urls) == 3


async def test_a_failed_page_raises_the_sdk_error() -> None:
    pipeline = FakePipeline([FakeResponse(404, b"<Error />", "ContainerNotFound")])
    with pytest.raises(ResourceNotFoundError):
        [page async for page in listing.aiter_listing_pages(FakeContainerClient(pipeline), "")]


async def test_without_the_pipeline_the_sdk_listing_is_used() -> None:
    class Properties:
        def __init__(self, name: str) -> None:
            self.name, self.size, self.last_modified = name, 4, None
            self.content_settings = type("Settings", (), {"content_md5": bytearray(MD5_A)})()

    class Pages:
        def by_page(self) -> Any:
            async def pages() -> Any:
                async def items() -> Any:
                    for name in ("p/x", "p/y"):
                        yield Properties(name)

                yield items()

            return pages()

    class SdkOnly:
        def __init__(self) -> None:
            self.asked: dict[str, Any] = {}

        def list_blobs(self, **kwargs: Any) -> Pages:
            self.asked = kwargs
            return Pages()

    client = SdkOnly()
    pages = [page async for page in listing.aiter_listing_pages(client, "p/", page_size=10)]
    assert pages == [[BlobInfo("p/x", 4, MD5_A), BlobInfo("p/y", 4, MD5_A)]]
    assert client.asked == {"name_starts_with": "p/", "results_per_page": 10}
