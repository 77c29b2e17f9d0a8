"""Shared by the tests: the SDK on sys.path, and the real bindings componentize-py
generates for the shipped WIT (once per test run, in a temporary directory)."""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(SDK))
if SDK not in sys.path:
    sys.path.insert(0, SDK)

_bindings_dir = None


def bindings():
    """The generated modules (slashd_plugin._bindings.load()), generating them first."""
    global _bindings_dir
    if _bindings_dir is None:
        try:
            import componentize_py  # noqa: F401
        except ImportError:
            raise AssertionError(
                f"componentize-py is not installed for {sys.executable}: the tests need it to "
                "generate the real bindings. Install it with "
                "`pip install componentize-py==0.25.1` (or `pip install ./sdk/python`), "
                "then run `python -m unittest discover sdk/python/tests` with that python."
            ) from None
        from slashd_plugin import cli

        out = tempfile.mkdtemp(prefix="slashd-plugin-bindings-")
        atexit.register(shutil.rmtree, out, True)
        cmd = cli._componentize_py(["bindings", out])
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0:
            raise AssertionError(f"componentize-py bindings failed:\n{done.stdout}")
        sys.path.insert(0, out)
        _bindings_dir = out
    from slashd_plugin import _bindings

    return _bindings.load()


def caller(b, name="ann", role="viewer"):
    t = b.types
    return t.Caller(id=f"user-{name}", name=name, role=getattr(t.Role, role.upper()))


def session(b):
    return b.types.SessionRef(id="s-1", title="Ops")


def invocation(b, command, args=(), values=(), raw_args=None, role="viewer"):
    """A generated `invocation` record."""
    t = b.types
    return t.Invocation(
        id="m-1",
        command=command,
        args=list(args),
        raw_args=" ".join(args) if raw_args is None else raw_args,
        values=[t.NamedValue(name=n, value=v) for n, v in values],
        caller=caller(b, role=role),
        session=session(b),
        connection_id="c-1",
    )


def completion_request(b, command, arg, partial=""):
    return b.types.CompletionRequest(
        command=command, arg=arg, partial=partial, values=[], caller=caller(b), session=session(b)
    )


def action_event(b, command, action, data=None):
    return b.types.ActionEvent(
        command=command, action=action, message_id="m-2", data=data, caller=caller(b, "bob"), session=session(b)
    )


class LogCapture:
    """Replaces the `log` import; `lines` collects (level name, message)."""

    def __init__(self, b):
        self.b = b
        self.lines = []

    def __enter__(self):
        self._old = self.b.log.log
        self.b.log.log = lambda level, message: self.lines.append((level.name.lower(), message))
        return self

    def __exit__(self, *exc):
        self.b.log.log = self._old
