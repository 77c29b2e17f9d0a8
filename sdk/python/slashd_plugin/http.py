"""Capability `http`: synchronous outbound HTTP over ``wasi:http/outgoing-handler@0.2.12``.

    resp = http.get("https://api.example.com/status", headers={"accept": "application/json"})
    if resp.ok:
        status = resp.json()["status"]
    http.post("https://hooks.example.com/x", json={"text": "hi"}, timeout=5)

The admin's allow-list decides where a request may go (``[plugins.NAME] http.allow``); the
host also bounds the number of requests per call, the time and the response size.
Redirects are not followed (a 3xx is a response like any other). A request that gets no
response raises :class:`slashd_plugin.HttpError` (a :class:`~slashd_plugin.HostError`):
its `code` is the wasi:http error code, e.g. ``HttpRequestDenied`` when the plugin lacks
the `http` grant or the URL is not on the allow-list (the server's log says which). Left
uncaught, it becomes the failed reply "HTTP request failed: HttpRequestDenied".
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Mapping, Optional, Tuple, Union

from . import _bindings
from ._errors import HttpError

__all__ = ["Response", "request", "get", "post", "MAX_RESPONSE_BYTES"]

#: The most response body :func:`request` reads by default (the host has its own bound,
#: 1 MiB unless the admin raised it).
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
# The most one write to a wasi output stream may carry, and what one read asks for.
_WRITE_CHUNK = 4096
_READ_CHUNK = 64 * 1024

Headers = Union[Mapping[str, Union[str, bytes]], Iterable[Tuple[str, Union[str, bytes]]], None]


@dataclass
class Response:
    """A response with its body read whole."""

    status: int
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def ok(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status < 300

    def header(self, name: str) -> Optional[str]:
        """A header's first value (names compare case-insensitively), None without it."""
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return None

    def text(self, encoding: str = "utf-8") -> str:
        """The body decoded (undecodable bytes replaced)."""
        return self.body.decode(encoding, errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (ValueError when it is not)."""
        return _json.loads(self.body)


def get(url: str, **options: Any) -> Response:
    """``request("GET", url, **options)``."""
    return request("GET", url, **options)


def post(url: str, body: Union[bytes, str, None] = None, **options: Any) -> Response:
    """``request("POST", url, body=body, **options)``; pass ``json=value`` for a JSON body."""
    return request("POST", url, body=body, **options)


def request(
    method: str,
    url: str,
    headers: Headers = None,
    body: Union[bytes, bytearray, str, None] = None,
    *,
    json: Any = None,
    timeout: Optional[float] = None,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> Response:
    """Send one request and read its response.

    `url` is an absolute http or https URL; `headers` a dict or a list of (name, value)
    pairs; `body` bytes or str (UTF-8), or `json` a value sent as JSON with its
    content-type. `timeout` (seconds) bounds the whole exchange on this side, on top of
    the host's own limit; a response body over `max_bytes` raises HttpError
    ``HttpResponseBodySize``.
    """
    b = _bindings.load()
    h = b.http
    scheme, authority, path = _target(url)
    pairs = _header_pairs(headers)
    if json is not None:
        if body is not None:
            raise ValueError("pass body or json, not both")
        body = _json.dumps(json)
        if not any(n.lower() == "content-type" for n, _ in pairs):
            pairs.append(("content-type", b"application/json"))
    if isinstance(body, str):
        body = body.encode("utf-8")
    payload = bytes(body or b"")
    clock = _Deadline(b, timeout)

    fields = h.Fields()
    for name, value in pairs:
        try:
            fields.append(name, value)
        except b.Err as e:
            _drop(fields)
            raise HttpError(_variant_name(e.value), f"header {name!r}") from None
    outgoing = h.OutgoingRequest(fields)  # takes the fields
    m = method.upper()
    for setter, arg, what in (
        (outgoing.set_method, _method(h, m), "HttpRequestMethodInvalid"),
        (outgoing.set_scheme, scheme(h), "HttpRequestUriInvalid"),
        (outgoing.set_authority, authority, "HttpRequestUriInvalid"),
        (outgoing.set_path_with_query, path, "HttpRequestUriInvalid"),
    ):
        try:
            setter(arg)
        except b.Err:
            _drop(outgoing)
            raise HttpError(what, f"{m} {url}") from None

    # The body is written after `handle`: before it nothing drains the body's buffer.
    out_body = outgoing.body()
    stream = out_body.write()
    try:
        future = b.outgoing_handler.handle(outgoing, None)  # takes the request
    except b.Err as e:
        _drop(stream)
        _drop(out_body)
        raise _error(e.value) from None
    try:
        try:
            for at in range(0, len(payload), _WRITE_CHUNK):
                stream.blocking_write_and_flush(payload[at : at + _WRITE_CHUNK])
        except b.Err as e:
            raise _stream_error(b, "writing the request body", e.value) from None
        finally:
            _drop(stream)
        try:
            h.OutgoingBody.finish(out_body, None)  # takes the body
        except b.Err as e:
            raise _error(e.value) from None
        clock.wait(future.subscribe(), "waiting for the response")
        got = future.get()
    finally:
        _drop(future)
    if got is None or isinstance(got, b.Err):
        raise HttpError("HttpResponseIncomplete", "the response was lost")
    inner = got.value
    if isinstance(inner, b.Err):
        raise _error(inner.value)
    return _read(b, inner.value, clock, max_bytes)


def _read(b: Any, response: Any, clock: "_Deadline", max_bytes: int) -> Response:
    try:
        status = response.status()
        fields = response.headers()
        try:
            headers = [(n, bytes(v).decode("utf-8", errors="replace")) for n, v in fields.entries()]
        finally:
            _drop(fields)
        try:
            incoming = response.consume()
        except b.Err:
            raise HttpError("HttpResponseIncomplete", "the response body is unavailable") from None
        try:
            stream = incoming.stream()
        except b.Err:
            _drop(incoming)
            raise HttpError("HttpResponseIncomplete", "the response body is unavailable") from None
        chunks: List[bytes] = []
        size = 0
        finished = False
        try:
            try:
                while True:
                    try:
                        chunk = stream.read(_READ_CHUNK)
                    except b.Err as e:
                        if type(e.value).__name__ == "StreamError_Closed":
                            break
                        raise _stream_error(b, "reading the response body", e.value) from None
                    if not chunk:
                        clock.wait(stream.subscribe(), "reading the response body")
                        continue
                    size += len(chunk)
                    if size > max_bytes:
                        raise HttpError("HttpResponseBodySize", f"the body is over {max_bytes} bytes")
                    chunks.append(bytes(chunk))
            finally:
                _drop(stream)
            # finish takes the body; the trailers' future it returns is not needed.
            _drop(b.http.IncomingBody.finish(incoming))
            finished = True
        finally:
            if not finished:
                _drop(incoming)
        return Response(status=status, headers=headers, body=b"".join(chunks))
    finally:
        _drop(response)


class _Deadline:
    """Waits on a pollable, until `timeout` seconds after the request started at most."""

    def __init__(self, b: Any, timeout: Optional[float]) -> None:
        self.b = b
        self.timeout = timeout
        self.until = None if timeout is None else b.clock.now() + max(0, int(timeout * 1e9))

    def wait(self, pollable: Any, doing: str) -> None:
        try:
            if self.until is None:
                pollable.block()
                return
            timer = self.b.clock.subscribe_instant(self.until)
            try:
                ready = self.b.poll.poll([pollable, timer])
            finally:
                _drop(timer)
            if 0 not in ready:
                raise HttpError("ConnectionTimeout", f"no answer within {self.timeout:g}s {doing}")
        finally:
            _drop(pollable)


def _drop(resource: Any) -> None:
    """Release a resource now (children must go before their parents)."""
    if resource is None:
        return
    try:
        resource.__exit__(None, None, None)
    except Exception:  # already released, or moved into a call that took it
        pass


def _target(url: str) -> Tuple[Any, str, str]:
    """The scheme (a constructor), authority and path-with-query of an absolute URL."""
    bad = HttpError("HttpRequestUriInvalid", f"{url!r} is not an absolute http or https URL")
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise bad
    kinds = {"http": lambda h: h.Scheme_Http(), "https": lambda h: h.Scheme_Https()}
    make = kinds.get(scheme.lower())
    if make is None:
        raise bad
    cut = min([i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0] or [len(rest)])
    authority, path = rest[:cut], rest[cut:]
    if not authority or "@" in authority:
        raise bad
    path = path.split("#", 1)[0]
    if not path or path.startswith("?"):
        path = "/" + path
    return make, authority, path


def _method(h: Any, method: str) -> Any:
    known = {
        "GET": h.Method_Get,
        "HEAD": h.Method_Head,
        "POST": h.Method_Post,
        "PUT": h.Method_Put,
        "DELETE": h.Method_Delete,
        "CONNECT": h.Method_Connect,
        "OPTIONS": h.Method_Options,
        "TRACE": h.Method_Trace,
        "PATCH": h.Method_Patch,
    }
    return known[method]() if method in known else h.Method_Other(method)


def _header_pairs(headers: Headers) -> List[Tuple[str, bytes]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs = []
    for name, value in items:
        if isinstance(value, str):
            value = value.encode("utf-8")
        pairs.append((str(name), bytes(value)))
    return pairs


def _variant_name(value: Any) -> str:
    """`ErrorCode_HttpRequestDenied` → "HttpRequestDenied", `HeaderError_Forbidden` → "Forbidden"."""
    name = type(value).__name__
    return name.split("_", 1)[1] if "_" in name else name


def _error(code: Any) -> HttpError:
    """A wasi:http `error-code` as HttpError, named as in the Rust SDK."""
    detail = ""
    payload = getattr(code, "value", None)
    if payload is not None:
        if hasattr(payload, "__dataclass_fields__"):
            parts = [f"{k}={getattr(payload, k)!r}" for k in payload.__dataclass_fields__ if getattr(payload, k) is not None]
            detail = ", ".join(parts)
        else:
            detail = str(payload)
    return HttpError(_variant_name(code), detail)


def _stream_error(b: Any, doing: str, error: Any) -> HttpError:
    if type(error).__name__ == "StreamError_Closed":
        return HttpError("HttpProtocolError", f"{doing}: the stream closed")
    io_error = error.value
    try:
        code = b.http.http_error_code(io_error)
        if code is not None:
            e = _error(code)
            return HttpError(e.code, f"{doing}" + (f": {e.detail}" if e.detail else ""))
        return HttpError("HttpProtocolError", f"{doing}: {io_error.to_debug_string()}")
    finally:
        _drop(io_error)
