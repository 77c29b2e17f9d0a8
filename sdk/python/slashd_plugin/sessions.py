"""Capability `sessions`: the caller's sessions and the current one. The records are the
generated ones (`session-detail`, `session-summary`, `connection-info`: dataclasses with
the WIT field names in snake_case). Raises :class:`slashd_plugin.HostError` when the host
refuses."""

from __future__ import annotations

from typing import Any, List

from ._host import call

__all__ = ["current", "list_mine", "end_current", "connection"]


def current() -> Any:
    """The session the command runs in (id, title, status, created_at, owner_id,
    message_count, participants)."""
    return call(lambda b: b.sessions.current)


def list_mine(limit: int = 20) -> List[Any]:
    """The caller's sessions, newest activity first."""
    return list(call(lambda b: b.sessions.list_mine, int(limit)))


def end_current() -> None:
    """End the current session (owner only); every participant is told."""
    call(lambda b: b.sessions.end_current)


def connection() -> Any:
    """The connection the command came from (id, connected_at)."""
    return call(lambda b: b.sessions.connection)
