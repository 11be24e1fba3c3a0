"""The gate's socket HTTP client against a loopback server that answers with scripted bytes:
what it sends, the answers it reads (sized, chunked, errors) and the ones it refuses."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from detector.gate.http_client import MAX_ANSWER_BYTES, HttpError, request


@contextmanager
def _server(answer: bytes, *, close: bool = True) -> Iterator[tuple[str, list[bytes]]]:
    """Accepts one connection, keeps what it was sent, writes `answer`, then closes (or
    holds the connection open when `close` is False)."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
            while len(rest) < length:
                rest += conn.recv(65536)
            received.append(head + b"\r\n\r\n" + rest)
            conn.sendall(answer)
            if not close:
                done.wait(10)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", received
    finally:
        done.set()
        thread.join(10)
        listener.close()


def test_a_sized_answer_and_what_was_sent() -> None:
    answer = (
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n"
        b'{"a": 1}trailing'
    )
    with _server(answer) as (url, received):
        body = request("POST", f"{url}/v1/gate/verdicts?x=1", {"Authorization": "Bearer t"},
                       b'{"id": "v"}', timeout=5)  # fmt: skip
    assert body == b'{"a": 1}'
    (sent,) = received
    assert sent.startswith(b"POST /v1/gate/verdicts?x=1 HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Bearer t\r\n" in sent and b"\r\nConnection: close\r\n" in sent
    assert b"\r\nContent-Length: 11\r\n" in sent and sent.endswith(b'\r\n\r\n{"id": "v"}')


def test_a_chunked_answer() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4\r\n{"a"\r\n3;x=y\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n'
    )
    with _server(answer) as (url, _):
        assert request("GET", url, {}, None, timeout=5) == b'{"a": 1}'


def test_an_error_status_carries_its_body() -> None:
    answer = b'HTTP/1.1 401 Unauthorized\r\nContent-Length: 18\r\n\r\n{"error": "token"}'
    with _server(answer) as (url, _), pytest.raises(HttpError) as raised:
        request("GET", url, {}, None, timeout=5)
    assert raised.value.status == 401 and raised.value.body == b'{"error": "token"}'


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "not an HTTP answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", "ended before its body"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5", "ended before its headers"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nab", "ended early"),
        (b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * (MAX_ANSWER_BYTES + 1), "larger than"),
    ],
)
def test_answers_that_are_not_whole_http_are_refused(answer: bytes, says: str) -> None:
    with _server(answer) as (url, _), pytest.raises(ValueError, match=says):
        request("GET", url, {}, None, timeout=5)


def test_a_server_that_never_finishes_times_out() -> None:
    with _server(b"HTTP/1.1 200 OK\r\n", close=False) as (url, _), pytest.raises(TimeoutError):
        request("GET", url, {}, None, timeout=0.5)


def test_a_proxy_in_the_environment_goes_through_urllib(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The proxy is down: urllib, which uses it, fails to reach it.
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
    # No process-wide opener yet, as in a fresh process.
    monkeypatch.setattr(urllib.request, "_opener", None)
    with pytest.raises(urllib.error.URLError):
        request("GET", "http://service.invalid/v1/tasks", {}, None, timeout=2)
    # `urlopen` would have built the process's opener with this proxy and kept it: every
    # later `urlopen` in the process, the gate's or anyone's, would go to the dead proxy.
    assert urllib.request._opener is None
