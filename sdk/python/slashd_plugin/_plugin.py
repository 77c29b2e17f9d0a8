"""`Plugin`: the manifest, the handlers, and the glue to the four exports."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import _bindings, log
from ._errors import Failed, Usage, describe
from ._reply import to_reply
from ._types import ActionEvent, Call, CompletionRequest, check_role
from .arg import Arg

Handler = Callable[[Call], Any]
Completer = Callable[[CompletionRequest], Any]
ActionHandler = Callable[[ActionEvent], Any]


@dataclass
class Command:
    """A command as declared with :meth:`Plugin.command`."""

    name: str
    summary: str
    handler: Handler
    min_role: str = "viewer"
    args: Optional[List[Arg]] = None
    aliases: List[str] = field(default_factory=list)
    confirm: Optional[str] = None
    usage: Optional[str] = None

    def to_wit(self, b: Any) -> Any:
        t = b.types
        return t.CommandSpec(
            name=self.name,
            aliases=list(self.aliases),
            summary=self.summary,
            # With `args` the host writes the usage line itself.
            usage=self.usage or f"/{self.name}",
            min_role=getattr(t.Role, self.min_role.upper()),
            args=None if self.args is None else [a.to_wit(b) for a in self.args],
            confirm=self.confirm,
        )


def capability_names(b: Any) -> List[str]:
    """The capabilities the WIT `capability` enum defines, as manifest names."""
    return [c.name.lower() for c in b.types.Capability]


class Plugin:
    """A plugin: its name, version, capabilities, commands and handlers.

        plugin = Plugin("hello", "0.1.0", capabilities=["kv"])

        @plugin.command("hello", "Say hello", args=[arg.text("name", "Who to greet")])
        def hello(call):
            return f"Hello, {call.values.get('name', call.caller.name)}!"

        WitWorld = plugin.world()

    `capabilities` are what the admin must grant (`log` needs none): names of the WIT
    `capability` enum — commands, stats, sessions, kv, config, http, secrets, progress,
    jobs. A wrong name raises ValueError when the manifest is built (at
    ``slashd-plugin build``).
    """

    def __init__(self, name: str, version: str, capabilities: Sequence[str] = ()) -> None:
        if isinstance(capabilities, str):
            raise TypeError("capabilities is a list of names, e.g. ['kv']")
        self.name = name
        self.version = version
        self.capabilities = list(capabilities)
        self.commands: List[Command] = []
        self.actions: Dict[Tuple[Optional[str], str], ActionHandler] = {}
        self.completers: Dict[Tuple[str, str], Completer] = {}
        if _bindings.available():
            self._check_capabilities(_bindings.load())

    # ---- declaring --------------------------------------------------------------------

    def command(
        self,
        name: str,
        summary: str,
        *,
        min_role: str = "viewer",
        args: Optional[Sequence[Arg]] = None,
        aliases: Sequence[str] = (),
        confirm: Optional[str] = None,
        usage: Optional[str] = None,
    ) -> Callable[[Handler], Handler]:
        """Declare the command `/name`, handled by the decorated function.

        The handler gets a :class:`Call` and returns a `str` (a plain reply) or a
        :class:`Reply`; it raises :class:`Usage` for bad arguments and :class:`Failed`
        (or anything else) when it cannot do its job. `args` declares typed arguments
        (``arg.text(…)``, …; the host checks them and writes the usage line); without
        `args` the command is untyped and reads ``call.args`` (give `usage` then).
        `confirm` asks the invoker to accept that prompt before the command runs.
        """
        check_role(min_role)
        if not name or name.startswith("/"):
            raise ValueError(f"a command name comes without '/': {name!r}")
        if args is not None:
            args = list(args)
            for a in args:
                if not isinstance(a, Arg):
                    raise TypeError(f"/{name}: args are built with arg.text(…) and friends, not {a!r}")
            names = [a.name for a in args]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"/{name}: argument {dupes[0]!r} is declared twice")
            for a in args[:-1]:
                if a.rest:
                    raise ValueError(f"/{name}: only the last argument may take the rest of the line ({a.name!r})")
        if isinstance(aliases, str):
            raise TypeError("aliases is a list of names")

        def register(handler: Handler) -> Handler:
            taken = {n for c in self.commands for n in [c.name, *c.aliases]}
            for n in [name, *aliases]:
                if n in taken:
                    raise ValueError(f"/{n} is declared twice in plugin {self.name}")
            self.commands.append(
                Command(name, summary, handler, min_role, args, list(aliases), confirm, usage)
            )
            return handler

        return register

    def action(self, id: str, command: Optional[str] = None) -> Callable[[ActionHandler], ActionHandler]:
        """Handle the button `id` (of any command's replies, or only `command`'s).

        The handler gets an :class:`ActionEvent` and returns what a command handler
        returns: the reply becomes a new message in the session.
        """

        def register(handler: ActionHandler) -> ActionHandler:
            self.actions[(command, id)] = handler
            return handler

        return register

    def completer(self, command: str, arg: str) -> Callable[[Completer], Completer]:
        """Suggest values for the argument `arg` of `command` (declared ``completes=True``).

        The handler gets a :class:`CompletionRequest` and returns a list of values, each a
        `str` or a ``(value, label)`` pair. It should be quick (the host waits 200 ms) and
        filter by ``request.partial`` itself; an exception answers no suggestions (logged).
        """

        def register(handler: Completer) -> Completer:
            self.completers[(command, arg)] = handler
            return handler

        return register

    # ---- the manifest -----------------------------------------------------------------

    def _check_capabilities(self, b: Any) -> None:
        known = capability_names(b)
        for c in self.capabilities:
            if c not in known:
                raise ValueError(
                    f"plugin {self.name}: unknown capability {c!r} (expected one of {', '.join(known)}; "
                    "log needs no grant)"
                )

    def _check(self, b: Any) -> None:
        self._check_capabilities(b)
        if not self.commands:
            raise ValueError(f"plugin {self.name} declares no command (use @plugin.command)")
        by_name = {c.name: c for c in self.commands}
        for (command, arg), _ in self.completers.items():
            c = by_name.get(command)
            if c is None:
                raise ValueError(f"completer for unknown command /{command}")
            spec = next((a for a in c.args or [] if a.name == arg), None)
            if spec is None:
                raise ValueError(f"completer for /{command}: no argument {arg!r}")
            if not spec.completes:
                raise ValueError(f"completer for /{command} {arg!r}: declare it with completes=True")
        for (command, _id) in self.actions:
            if command is not None and command not in by_name:
                raise ValueError(f"action {_id!r} for unknown command /{command}")

    def manifest(self) -> Any:
        """The generated `manifest` record (checks the declarations first)."""
        b = _bindings.load()
        self._check(b)
        t = b.types
        return t.Manifest(
            name=self.name,
            version=self.version,
            commands=[c.to_wit(b) for c in self.commands],
            capabilities=[getattr(t.Capability, c.upper()) for c in self.capabilities],
        )

    # ---- the exports ------------------------------------------------------------------

    def invoke(self, invocation: Any) -> Any:
        """The `invoke` export: run the command's handler; errors raise `Err(plugin-error)`."""
        b = _bindings.load()

        def run() -> Any:
            call = Call.from_wit(invocation)
            command = next((c for c in self.commands if c.name == call.command), None)
            if command is None:
                raise Failed(f"no such command /{call.command}")
            return command.handler(call)

        return self._guard(b, run, f"/{invocation.command}")

    def on_action(self, event: Any) -> Any:
        """The `on-action` export: run the button's handler."""
        b = _bindings.load()

        def run() -> Any:
            ev = ActionEvent.from_wit(event)
            handler = self.actions.get((ev.command, ev.action)) or self.actions.get((None, ev.action))
            if handler is None:
                raise Failed(f"no such action {ev.action}")
            return handler(ev)

        return self._guard(b, run, f"action {event.action} of /{event.command}")

    def complete(self, request: Any) -> List[Any]:
        """The `complete` export: the completer's suggestions; [] (logged) when it fails."""
        b = _bindings.load()
        t = b.types
        try:
            req = CompletionRequest.from_wit(request)
            handler = self.completers.get((req.command, req.arg))
            if handler is None:
                return []
            out = []
            for item in handler(req) or []:
                if isinstance(item, str):
                    out.append(t.Completion(value=item, label=None))
                elif isinstance(item, tuple) and len(item) == 2:
                    value, label = item
                    out.append(t.Completion(value=str(value), label=None if label is None else str(label)))
                else:
                    raise TypeError(f"a completion is a str or a (value, label) pair, not {item!r}")
            return out
        except BaseException as e:  # noqa: BLE001 — never trap
            log.error(f"completing /{request.command} {request.arg}: {describe(e)}\n{traceback.format_exc()}")
            return []

    def _guard(self, b: Any, run: Callable[[], Any], what: str) -> Any:
        t = b.types
        try:
            return to_reply(run()).to_wit(b)
        except b.Err as e:
            # Raw bindings code may raise Err(plugin-error) itself: pass it on.
            if isinstance(e.value, (t.PluginError_Usage, t.PluginError_Failed)):
                raise
            error = t.PluginError_Failed(e.value if isinstance(e.value, str) else f"Err({e.value!r})")
        except Usage as e:
            error = t.PluginError_Usage(e.message)
        except Failed as e:
            error = t.PluginError_Failed(e.message)
        except BaseException as e:  # noqa: BLE001 — an exception must never trap
            log.error(f"{what} failed: {describe(e)}\n{traceback.format_exc()}")
            error = t.PluginError_Failed(describe(e))
        raise b.Err(error)

    # ---- componentize-py --------------------------------------------------------------

    def world(self) -> type:
        """The `WitWorld` class componentize-py looks for in the app module::

            WitWorld = plugin.world()

        It checks the declarations now, so a mistake fails the build.
        """
        b = _bindings.load()
        self.manifest()
        plugin = self

        class WitWorld(b.world.WitWorld):  # type: ignore[misc, name-defined]
            def manifest(self) -> Any:
                return plugin.manifest()

            def invoke(self, invocation: Any) -> Any:
                return plugin.invoke(invocation)

            def complete(self, request: Any) -> List[Any]:
                return plugin.complete(request)

            def on_action(self, event: Any) -> Any:
                return plugin.on_action(event)

        WitWorld.__qualname__ = WitWorld.__name__ = "WitWorld"
        return WitWorld
