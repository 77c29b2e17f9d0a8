"""Typed arguments of a command: the host parses and checks them before the plugin runs
and writes the usage line from them.

    arg.text("name", "Who to greet")
    arg.integer("count", "How many", default=1, min=1, max=10)
    arg.duration("wait", "How long", default="30s", max=datetime.timedelta(minutes=5))
    arg.choice("env", "Where", ["staging", "prod"], required=True)

Every kind takes ``required=False, default=None, rest=False, completes=False, min=None,
max=None``: `default` is the value when the argument is absent (a Python value or the text
as it would be typed), `rest` lets the last (text) argument take the rest of the line,
`completes` asks the plugin's completer for values, `min`/`max` bound integers, numbers
and durations (durations in seconds, or a `datetime.timedelta`).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Union

__all__ = ["Arg", "text", "integer", "number", "boolean", "duration", "choice", "user", "session"]

Bound = Optional[Union[int, float, datetime.timedelta]]

#: The kinds, as the WIT `arg-kind` names them.
KINDS = ("text", "integer", "number", "boolean", "duration", "choice", "user", "session")


@dataclass(frozen=True)
class Arg:
    """One declared argument; build it with the functions of this module."""

    name: str
    kind: str
    summary: str
    required: bool = False
    default: Optional[str] = None
    rest: bool = False
    completes: bool = False
    min: Optional[float] = None
    max: Optional[float] = None
    choices: List[str] = field(default_factory=list)

    def to_wit(self, b: Any) -> Any:
        """The generated `arg-spec`."""
        t = b.types
        kinds = {
            "text": t.ArgKind_Text,
            "integer": t.ArgKind_Integer,
            "number": t.ArgKind_Number,
            "boolean": t.ArgKind_Boolean,
            "duration": t.ArgKind_Duration,
            "user": t.ArgKind_User,
            "session": t.ArgKind_Session,
        }
        kind = t.ArgKind_Choice(list(self.choices)) if self.kind == "choice" else kinds[self.kind]()
        return t.ArgSpec(
            name=self.name,
            kind=kind,
            summary=self.summary,
            required=self.required,
            default=self.default,
            rest=self.rest,
            completes=self.completes,
            min=self.min,
            max=self.max,
        )


def _typed(value: Any) -> str:
    """A default as it would be typed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.timedelta):
        ms = round(value.total_seconds() * 1000)
        return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"
    return str(value)


def _bound(value: Bound) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"a bound must be a number or a timedelta, not {value!r}")
    return float(value)


def _make(
    kind: str,
    name: str,
    summary: str,
    *,
    required: bool = False,
    default: Any = None,
    rest: bool = False,
    completes: bool = False,
    min: Bound = None,
    max: Bound = None,
    choices: Sequence[str] = (),
) -> Arg:
    if not name or not isinstance(name, str):
        raise ValueError(f"an argument needs a name, not {name!r}")
    if rest and kind != "text":
        raise ValueError(f"argument {name!r}: only a text argument may take the rest of the line")
    lo, hi = _bound(min), _bound(max)
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"argument {name!r}: min {lo} is above max {hi}")
    return Arg(
        name=name,
        kind=kind,
        summary=summary,
        required=bool(required),
        default=None if default is None else _typed(default),
        rest=bool(rest),
        completes=bool(completes),
        min=lo,
        max=hi,
        choices=[str(c) for c in choices],
    )


def text(name: str, summary: str, **options: Any) -> Arg:
    """Any text; the value is a `str`."""
    return _make("text", name, summary, **options)


def integer(name: str, summary: str, **options: Any) -> Arg:
    """A whole number; the value is an `int`."""
    return _make("integer", name, summary, **options)


def number(name: str, summary: str, **options: Any) -> Arg:
    """A number; the value is a `float`."""
    return _make("number", name, summary, **options)


def boolean(name: str, summary: str, **options: Any) -> Arg:
    """true/false (yes/no…); the value is a `bool`."""
    return _make("boolean", name, summary, **options)


def duration(name: str, summary: str, **options: Any) -> Arg:
    """A duration typed as "90s" or "1h30m"; the value is a `datetime.timedelta`."""
    return _make("duration", name, summary, **options)


def choice(name: str, summary: str, choices: Sequence[str], **options: Any) -> Arg:
    """One of `choices`; the value is the chosen `str`."""
    if isinstance(choices, str) or not choices:
        raise ValueError(f"argument {name!r}: choice needs a list of choices")
    return _make("choice", name, summary, choices=choices, **options)


def user(name: str, summary: str, **options: Any) -> Arg:
    """A known user's name; the value is a :class:`slashd_plugin.User`."""
    return _make("user", name, summary, **options)


def session(name: str, summary: str, **options: Any) -> Arg:
    """A session id the caller can see; the value is a :class:`slashd_plugin.Session`."""
    return _make("session", name, summary, **options)
