"""Capability `kv`: bytes under string keys, private to this plugin, kept in the server's
database (keys ≤ 256 B, values ≤ 64 KiB, ≤ 1,000 keys by default). Every function raises
:class:`slashd_plugin.HostError` with the host's text when the host refuses (for instance
without the `kv` grant)."""

from __future__ import annotations

import json
from typing import Any, List, Optional, Union

from ._host import call

__all__ = ["get", "get_text", "get_json", "set", "set_json", "delete", "keys"]


def get(key: str) -> Optional[bytes]:
    """The value stored under `key`, None when there is none."""
    value = call(lambda b: b.kv.get, key)
    return None if value is None else bytes(value)


def get_text(key: str) -> Optional[str]:
    """The value under `key` decoded as UTF-8, None when there is none."""
    value = get(key)
    return None if value is None else value.decode("utf-8")


def get_json(key: str) -> Any:
    """The JSON value under `key`, None when there is none."""
    value = get(key)
    return None if value is None else json.loads(value)


def set(key: str, value: Union[bytes, bytearray, str]) -> None:
    """Store `value` (a str is stored as UTF-8) under `key`."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    elif not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"kv.set stores bytes or str, not {type(value).__name__} (use kv.set_json)")
    call(lambda b: b.kv.set, key, bytes(value))


def set_json(key: str, value: Any) -> None:
    """Store `value` as JSON under `key`."""
    set(key, json.dumps(value))


def delete(key: str) -> None:
    """Remove `key` (nothing happens when it is absent)."""
    call(lambda b: b.kv.delete, key)


def keys(prefix: str = "") -> List[str]:
    """The keys starting with `prefix`."""
    return list(call(lambda b: b.kv.list_keys, prefix))
