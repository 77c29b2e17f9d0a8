"""Access to the bindings componentize-py generates for the `plugin` world.

`wit_world` and `componentize_py_types` exist only while componentize-py builds (and then
runs) a component, or where `slashd-plugin bindings DIR` wrote them onto `sys.path` (the
SDK's own tests do that). The SDK looks them up on first use and keeps the module objects:
every call goes through a module attribute, so a test may replace one.
"""

from __future__ import annotations

import types as _types
from typing import Optional

_loaded: Optional[_types.SimpleNamespace] = None


class BindingsMissing(RuntimeError):
    """The generated `wit_world` bindings are not importable (not inside a component)."""


def load() -> _types.SimpleNamespace:
    """The generated modules, imported once."""
    global _loaded
    if _loaded is not None:
        return _loaded
    try:
        import componentize_py_types
        import wit_world
        from wit_world.imports import (
            commands,
            config,
            jobs,
            kv,
            log,
            monotonic_clock,
            outgoing_handler,
            poll,
            progress,
            secrets,
            sessions,
            slashd_plugin_types,
            stats,
            streams,
            wasi_http_types,
        )
    except ImportError as e:
        raise BindingsMissing(
            "the slashd plugin bindings (`wit_world`) are not importable: host calls and "
            "Plugin.world() work inside a component built with `slashd-plugin build`, or "
            "after `slashd-plugin bindings DIR` with DIR on sys.path "
            f"({type(e).__name__}: {e})"
        ) from None
    _loaded = _types.SimpleNamespace(
        Err=componentize_py_types.Err,
        Ok=componentize_py_types.Ok,
        world=wit_world,
        types=slashd_plugin_types,
        log=log,
        kv=kv,
        config=config,
        secrets=secrets,
        progress=progress,
        commands=commands,
        stats=stats,
        sessions=sessions,
        jobs=jobs,
        outgoing_handler=outgoing_handler,
        http=wasi_http_types,
        streams=streams,
        poll=poll,
        clock=monotonic_clock,
    )
    return _loaded


def available() -> bool:
    """Whether the bindings can be imported here."""
    try:
        load()
    except BindingsMissing:
        return False
    return True
