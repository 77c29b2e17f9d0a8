"""The one way the host-call modules call an import: a `result` error becomes HostError."""

from __future__ import annotations

from typing import Any, Callable

from . import _bindings
from ._errors import HostError


def call(pick: Callable[[Any], Callable[..., Any]], *args: Any) -> Any:
    """Call the import `pick(bindings)` with `args`; its `Err(text)` raises HostError(text)."""
    b = _bindings.load()
    fn = pick(b)
    try:
        return fn(*args)
    except b.Err as e:
        raise HostError(str(e.value)) from None
