"""The exceptions a handler raises, and how they become a `plugin-error`."""

from __future__ import annotations


class PluginException(Exception):
    """Base of the SDK's exceptions; `message` is what the user sees."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = str(message)

    def __str__(self) -> str:
        return self.message


class Usage(PluginException):
    """The arguments were wrong: the host answers `usage` with this text.

    >>> raise Usage("usage: /deploy <service>")
    """


class Failed(PluginException):
    """The command could not do its job: a `failed` error with this text.

    Any other exception a handler lets escape is reported the same way, as
    ``"ExceptionType: message"``.
    """


class HostError(Failed):
    """A host call returned an error. `message` is the host's own text, e.g.
    "capability `kv` is not granted to plugin hello" — uncaught, it becomes the failed
    reply with exactly those words."""


class HttpError(HostError):
    """An HTTP request got no response (or too big a one).

    `code` names the `wasi:http` error code the way the Rust SDK does (`HttpRequestDenied`,
    `ConnectionTimeout`, `HttpResponseBodySize`, …); a request the plugin may not make
    (no `http` grant, or a URL off the allow-list) is `HttpRequestDenied`.
    """

    def __init__(self, code: str, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        text = f"HTTP request failed: {code}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)


def describe(exc: BaseException) -> str:
    """The text of a `failed` error for an exception the handler did not expect."""
    if isinstance(exc, PluginException):
        return exc.message
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
