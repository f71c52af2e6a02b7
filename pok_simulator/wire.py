"""
What travels between the request pipeline and the socket: the parsed request, the answer, and the HTTP error.

An answer is built under the simulator's lock and written outside it, so it is a complete, immutable value. Most
answers carry their body as bytes; the huge-body fault streams its body from a generator instead (a 300 MiB answer
must not sit in memory), and the slow-drip fault paces the write through a callback that also says when a stop or
reset abandoned the answer.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


class HttpError(Exception):
    """Raised by the endpoint handlers and the validation to answer with a JSON ``{"message": ...}`` error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Incoming:
    """What an endpoint handler needs from a request; header names are lower-cased."""

    params: dict[str, str]
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Response:
    """
    A complete HTTP response.

    ``stream`` (with ``stream_length``) replaces ``body`` for bodies too large to hold. ``pace`` is called before
    every write (every byte when ``drip`` is set); when it returns False the connection is cut mid-body.
    """

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    stream: Callable[[], Iterator[bytes]] | None = None
    stream_length: int = 0
    pace: Callable[[], bool] | None = None
    drip: bool = False

    @property
    def content_length(self) -> int:
        return self.stream_length if self.stream is not None else len(self.body)

    def chunks(self) -> Iterator[bytes]:
        """The body in the pieces it should be written in."""
        if self.stream is not None:
            yield from self.stream()
        else:
            yield self.body


def json_response(status: int, data: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(status, json.dumps(data).encode("utf-8"), "application/json", headers)


def error_response(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return json_response(status, {"message": message}, headers)
