"""Test plugin `pyprobe`, built with stock componentize-py against the raw 0.2.0 bindings.

componentize-py imports the whole world; the manifest asks for `config` alone, so the host
must load it with that one grant and answer its other calls with "not granted" errors.
"""

import wit_world
from componentize_py_types import Err
from wit_world.imports import config, kv, log
from wit_world.imports.slashd_plugin_types import (
    Capability,
    CommandSpec,
    Format,
    Manifest,
    PluginError_Failed,
    PluginError_Usage,
    Reply,
    Role,
)


class WitWorld(wit_world.WitWorld):
    def manifest(self):
        command = CommandSpec(
            name="pyprobe",
            aliases=[],
            summary="A Python plugin from the stock toolchain",
            usage="/pyprobe [greet|kv|usage]",
            min_role=Role.VIEWER,
            args=None,
            confirm=None,
        )
        return Manifest(
            name="pyprobe", version="0.2.0", commands=[command], capabilities=[Capability.CONFIG]
        )

    def invoke(self, call):
        what = call.args[0] if call.args else "greet"
        if what == "greet":
            log.log(log.Level.INFO, f"pyprobe greets {call.caller.name}")
            greeting = config.get("greeting")
            return Reply(
                body=f"python: {greeting} {call.caller.name} (invocation {call.id})",
                format=Format.PLAIN,
                data=None,
                ephemeral=False,
                actions=[],
            )
        if what == "kv":
            try:
                kv.get("anything")
            except Err as e:
                raise Err(PluginError_Failed(f"kv refused: {e.value}"))
            raise Err(PluginError_Failed("kv answered without a grant"))
        raise Err(PluginError_Usage("usage: /pyprobe [greet|kv]"))

    def complete(self, request):
        return []

    def on_action(self, event):
        raise Err(PluginError_Failed("no such action"))
