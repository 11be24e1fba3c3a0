"""One HTTP request for the gate, over a plain socket when it can be.

urllib.request, and http.client under it, import the email package and ssl: measured with
`trailguard bench gate`, that doubled what the gate costs before a tool call when it sends
its verdict. A verdict goes out on every tool call, so a request to an `http://` service
with no proxy configured is written and read here, over a socket, as HTTP/1.1 with
`Connection: close`: the answer is read to its end (Content-Length or chunked) within the
timeout. `https://`, and any request while `http_proxy` is set, go through urllib, which
knows TLS and proxies.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

MAX_ANSWER_BYTES = 1 << 20


class HttpError(Exception):
    """The server answered with a status other than 2xx; `body` is what it said."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


def request(
    method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
) -> bytes:
    """The answer's body for a 2xx status; HttpError for another status, OSError when the
    server cannot be reached or is too slow, ValueError for an answer that is not HTTP."""
    parts = urlsplit(url)
    if parts.scheme != "http" or os.environ.get("http_proxy") or os.environ.get("HTTP_PROXY"):
        return _with_urllib(method, url, headers, body, timeout)
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    deadline = time.monotonic() + timeout
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as sock:
        sock.sendall(head + (body or b""))
        answer = _read_all(sock, deadline)
    status, payload = _parse(answer)
    if not 200 <= status < 300:
        raise HttpError(status, payload)
    return payload


def _read_all(sock: socket.socket, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        sock.settimeout(left)
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        size += len(data)
        if size > MAX_ANSWER_BYTES:
            raise ValueError(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
        chunks.append(data)


def _parse(answer: bytes) -> tuple[int, bytes]:
    head, sep, rest = answer.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("the answer ended before its headers did")
    status_line, *header_lines = head.split(b"\r\n")
    words = status_line.split(None, 2)
    if len(words) < 2 or not words[0].startswith(b"HTTP/") or not words[1].isdigit():
        raise ValueError(f"not an HTTP answer: {status_line[:60]!r}")
    fields: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.decode("latin-1").partition(":")
        fields[name.strip().lower()] = value.strip()
    if "chunked" in fields.get("transfer-encoding", "").lower():
        return int(words[1]), _dechunk(rest)
    length = fields.get("content-length")
    if length is not None:
        if not length.isdigit() or len(rest) < int(length):
            raise ValueError("the answer ended before its body did")
        rest = rest[: int(length)]
    return int(words[1]), rest


def _dechunk(data: bytes) -> bytes:
    body = bytearray()
    while True:
        size_line, sep, data = data.partition(b"\r\n")
        if not sep:
            raise ValueError("a chunked answer ended early")
        digits = size_line.split(b";", 1)[0].strip()
        size = int(digits, 16)  # ValueError when it is not a chunk size
        if size == 0:
            return bytes(body)
        if len(data) < size + 2:
            raise ValueError("a chunked answer ended early")
        body += data[:size]
        data = data[size + 2 :]


def _with_urllib(
    method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
) -> bytes:
    import urllib.error
    import urllib.request

    call = urllib.request.Request(  # noqa: S310 - the caller checks the scheme
        url, data=body, method=method, headers=dict(headers)
    )
    try:
        # An opener of its own, built with the proxy settings of now: `urlopen` builds one
        # for the whole process on its first call and keeps that call's proxy for ever.
        with urllib.request.build_opener().open(call, timeout=timeout) as answer:
            payload: bytes = answer.read()
            return payload
    except urllib.error.HTTPError as exc:
        raise HttpError(exc.code, exc.read()) from None
