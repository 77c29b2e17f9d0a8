"""A command's answer: text in one of three formats, optional structured data, buttons."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, List, Optional

from ._types import check_role

STYLES = ("primary", "secondary", "danger")
FORMATS = ("plain", "markdown", "json")


@dataclass(frozen=True)
class Button:
    """A button under a stored reply (WIT `action`). Pressing it calls the plugin's
    ``@plugin.action(id)`` handler. `min_role` is raised to the command's own if lower;
    `confirm` asks the presser to accept a prompt first; `once` lets it be pressed once."""

    id: str
    label: str
    style: str = "secondary"
    min_role: str = "viewer"
    confirm: Optional[str] = None
    once: bool = False

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"unknown button style {self.style!r} (expected primary, secondary or danger)")
        check_role(self.min_role)

    def to_wit(self, b: Any) -> Any:
        t = b.types
        return t.Action(
            id=self.id,
            label=self.label,
            style=getattr(t.ActionStyle, self.style.upper()),
            min_role=getattr(t.Role, self.min_role.upper()),
            confirm=self.confirm,
            once=self.once,
        )


@dataclass
class Reply:
    """A reply. Build it with :meth:`plain`, :meth:`markdown` or :meth:`json` and chain::

        Reply.markdown("Hello, **you**!").data({"name": "you"}).button("wave", "Wave back")

    A handler may also return a `str`: a plain reply.
    """

    body: str
    format: str = "plain"
    data_json: Optional[str] = None
    is_ephemeral: bool = False
    buttons: List[Button] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unknown reply format {self.format!r} (expected plain, markdown or json)")

    @classmethod
    def plain(cls, body: str) -> "Reply":
        """Plain text."""
        return cls(str(body), "plain")

    @classmethod
    def markdown(cls, body: str) -> "Reply":
        """Markdown, rendered by the clients."""
        return cls(str(body), "markdown")

    @classmethod
    def json(cls, value: Any) -> "Reply":
        """A JSON document as the body (`value` is serialized with `json.dumps`)."""
        return cls(json.dumps(value), "json")

    def data(self, value: Any) -> "Reply":
        """Attach structured data (serialized with `json.dumps`): clients may render it, and
        a button's handler receives it as `event.data`. ``data(None)`` removes it."""
        self.data_json = None if value is None else json.dumps(value)
        return self

    def ephemeral(self) -> "Reply":
        """Only the invoking connection sees it and it is not stored (buttons are dropped)."""
        self.is_ephemeral = True
        return self

    def button(
        self,
        id: str,
        label: str,
        *,
        style: str = "secondary",
        min_role: str = "viewer",
        confirm: Optional[str] = None,
        once: bool = False,
    ) -> "Reply":
        """Add a button (see :class:`Button`)."""
        self.buttons.append(Button(id, label, style, min_role, confirm, once))
        return self

    def add(self, button: Button) -> "Reply":
        """Add a :class:`Button` built beforehand."""
        self.buttons.append(button)
        return self

    def to_wit(self, b: Any) -> Any:
        t = b.types
        return t.Reply(
            body=self.body,
            format=getattr(t.Format, self.format.upper()),
            data=self.data_json,
            ephemeral=self.is_ephemeral,
            actions=[x.to_wit(b) for x in self.buttons],
        )


def to_reply(result: Any) -> Reply:
    """What a handler returned, as a :class:`Reply`."""
    if isinstance(result, Reply):
        return result
    if isinstance(result, str):
        return Reply.plain(result)
    raise TypeError(f"a handler must return a str or a Reply, not {type(result).__name__}")
