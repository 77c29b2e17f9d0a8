"""The slashd plugin SDK for Python: write a slash command as a few decorated functions,
build it into a WebAssembly component with ``slashd-plugin build app.py``.

    from slashd_plugin import Plugin, Reply, arg

    plugin = Plugin("hello", "0.1.0")

    @plugin.command("hello", "Say hello", args=[arg.text("name", "Who to greet")])
    def hello(call):
        name = call.values.get("name", call.caller.name)
        return Reply.markdown(f"Hello, **{name}**!").data({"name": name}).button("wave", "Wave back")

    @plugin.action("wave")
    def wave(event):
        return f"{event.caller.name} waves back at {event.data['name']}"

    WitWorld = plugin.world()

Host calls: :mod:`kv`, :mod:`config`, :mod:`secrets`, :mod:`http`, :mod:`progress`,
:mod:`log`, :mod:`sessions`, :mod:`stats`, :mod:`commands`, :mod:`jobs`. Each but `log`
needs its capability in ``Plugin(capabilities=[…])`` and the admin's grant; a refused
call raises :class:`HostError` with the host's text.
"""

from . import arg, commands, config, http, jobs, kv, log, progress, secrets, sessions, stats
from ._errors import Failed, HostError, HttpError, PluginException, Usage
from ._plugin import Command, Plugin
from ._reply import Button, Reply
from ._types import ROLES, ActionEvent, Call, Caller, CompletionRequest, Session, User
from .http import Response

#: The package version: the plugin API version it builds against (`slashd:plugin@0.2.0`).
__version__ = "0.2.0"
API_VERSION = "0.2.0"
#: A string `slashd-plugin build` looks for in a built component, to prove the SDK is in it.
SDK_MARKER = "slashd-plugin-python-sdk/0.2.0"

__all__ = [
    "API_VERSION",
    "ActionEvent",
    "Button",
    "Call",
    "Caller",
    "Command",
    "CompletionRequest",
    "Failed",
    "HostError",
    "HttpError",
    "Plugin",
    "PluginException",
    "ROLES",
    "Reply",
    "Response",
    "SDK_MARKER",
    "Session",
    "Usage",
    "User",
    "arg",
    "commands",
    "config",
    "http",
    "jobs",
    "kv",
    "log",
    "progress",
    "secrets",
    "sessions",
    "stats",
]
