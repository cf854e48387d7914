"""The delayed link the upload benchmark also runs over: bytes intact, in order, a round trip later."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from bench.network_link import DelayedLink

ROUND_TRIP = 0.2


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    """A TCP server that sends back what it reads, then closes when the client has closed."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                while data := connection.recv(65536):
                    connection.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[:2]
    listener.close()


def _read(connection: socket.socket, size: int) -> bytes:
    received = bytearray()
    while len(received) < size:
        chunk = connection.recv(65536)
        if not chunk:
            break
        received += chunk
    return bytes(received)


def test_link_delivers_every_byte_in_order_a_round_trip_later(echo_server: tuple[str, int]) -> None:
    host, port = echo_server
    payload = os.urandom(3 * 1024 * 1024)  # many TCP chunks, each delayed on its own
    with (
        DelayedLink(host, port, ROUND_TRIP) as link,
        socket.create_connection((link.host, link.port), timeout=30) as connection,
    ):
        for _exchange in range(2):  # a kept-alive connection pays the round trip on every exchange
            started = time.monotonic()
            sender = threading.Thread(target=connection.sendall, args=(payload,))
            sender.start()
            echoed = _read(connection, len(payload))
            sender.join()
            assert echoed == payload
            assert time.monotonic() - started >= ROUND_TRIP

        connection.shutdown(socket.SHUT_WR)
        # The server closes once it sees the client gone; the link passes the close on.
        assert connection.recv(1) == b""


def test_link_closes_the_client_when_the_server_cannot_be_reached() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]  # bound, never listening: connections are refused
        with (
            DelayedLink("127.0.0.1", closed_port, ROUND_TRIP) as link,
            socket.create_connection((link.host, link.port), timeout=10) as connection,
        ):
            assert connection.recv(1) == b""
