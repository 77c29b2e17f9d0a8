"""Capability `config`: this plugin's `settings` table from the server's config file
(``[plugins.NAME] settings = { … }``). Raises :class:`slashd_plugin.HostError` when the
host refuses."""

from __future__ import annotations

import json
from typing import Any, Dict

from ._host import call

__all__ = ["get", "all"]


def get(key: str, default: Any = None) -> Any:
    """One setting as a Python value (parsed from its JSON), `default` when it is not set."""
    text = call(lambda b: b.config.get, key)
    if text is None:
        return default
    return json.loads(text)


def all() -> Dict[str, Any]:
    """Every setting, as a dict."""
    value = json.loads(call(lambda b: b.config.all))
    return value if isinstance(value, dict) else {}
