"""Plain Python views of what the host passes in: calls, completion requests, button
presses, and the typed argument values in them."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

#: The roles, lowest first: viewer < analyst < admin.
ROLES = ("viewer", "analyst", "admin")


def check_role(role: str) -> str:
    """`role` itself when it is one of :data:`ROLES`, else ValueError."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (expected viewer, analyst or admin)")
    return role


def _role_name(role: Any) -> str:
    # A generated enum member (Role.ANALYST) → "analyst".
    return role.name.lower()


@dataclass(frozen=True)
class User:
    """A user a `user` argument names (a `user-ref`)."""

    id: str
    name: str
    role: str

    def allows(self, required: str) -> bool:
        """Whether this user's role is at least `required`."""
        return ROLES.index(self.role) >= ROLES.index(check_role(required))


@dataclass(frozen=True)
class Caller(User):
    """Who ran the command (or pressed the button)."""


@dataclass(frozen=True)
class Session:
    """A session (a `session-ref`): the one the command ran in, or a `session` argument."""

    id: str
    title: str


#: What a typed argument's value is in Python.
ArgValue = Union[str, int, float, bool, datetime.timedelta, User, Session]


def convert_value(value: Any) -> ArgValue:
    """A generated `value` variant as a plain Python value.

    text/choice → str, integer → int, number → float, boolean → bool,
    duration-ms → datetime.timedelta, user → :class:`User`, session → :class:`Session`.
    """
    kind = type(value).__name__
    inner = value.value
    if kind in ("Value_Text", "Value_Choice"):
        return str(inner)
    if kind == "Value_Integer":
        return int(inner)
    if kind == "Value_Number":
        return float(inner)
    if kind == "Value_Boolean":
        return bool(inner)
    if kind == "Value_DurationMs":
        return datetime.timedelta(milliseconds=inner)
    if kind == "Value_User":
        return User(id=inner.id, name=inner.name, role=_role_name(inner.role))
    if kind == "Value_Session":
        return Session(id=inner.id, title=inner.title)
    raise TypeError(f"unknown argument value {value!r}")


def convert_values(values: List[Any]) -> Dict[str, ArgValue]:
    """`list<named-value>` as a dict name → value."""
    return {v.name: convert_value(v.value) for v in values}


def _caller(c: Any) -> Caller:
    return Caller(id=c.id, name=c.name, role=_role_name(c.role))


def _session(s: Any) -> Session:
    return Session(id=s.id, title=s.title)


@dataclass(frozen=True)
class Call:
    """One call of a command.

    `values` holds the typed arguments the command declares (absent optional ones are
    missing: use ``call.values.get(name, default)``); `args` is the line split shell-style
    and `raw_args` everything after the command name, as typed.
    """

    id: str
    command: str
    args: List[str]
    raw_args: str
    values: Dict[str, ArgValue]
    caller: Caller
    session: Session
    connection_id: str

    @classmethod
    def from_wit(cls, inv: Any) -> "Call":
        return cls(
            id=inv.id,
            command=inv.command,
            args=list(inv.args),
            raw_args=inv.raw_args,
            values=convert_values(inv.values),
            caller=_caller(inv.caller),
            session=_session(inv.session),
            connection_id=inv.connection_id,
        )


@dataclass(frozen=True)
class CompletionRequest:
    """What the host asks a completer for: values of `arg` of `command` starting, ideally,
    with `partial` (filter yourself; the host uses at most 25 items)."""

    command: str
    arg: str
    partial: str
    values: Dict[str, ArgValue]
    caller: Caller
    session: Session

    @classmethod
    def from_wit(cls, req: Any) -> "CompletionRequest":
        return cls(
            command=req.command,
            arg=req.arg,
            partial=req.partial,
            values=convert_values(req.values),
            caller=_caller(req.caller),
            session=_session(req.session),
        )


@dataclass(frozen=True)
class ActionEvent:
    """A button was pressed. `data` is the reply's data, parsed from JSON (None without
    any); `raw_data` the JSON text itself."""

    command: str
    action: str
    message_id: str
    data: Any
    raw_data: Optional[str]
    caller: Caller
    session: Session

    @classmethod
    def from_wit(cls, ev: Any) -> "ActionEvent":
        data = None
        if ev.data is not None:
            try:
                data = json.loads(ev.data)
            except ValueError:
                data = None
        return cls(
            command=ev.command,
            action=ev.action,
            message_id=ev.message_id,
            data=data,
            raw_data=ev.data,
            caller=_caller(ev.caller),
            session=_session(ev.session),
        )
