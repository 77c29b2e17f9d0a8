"""Declaring a plugin builds the WIT manifest; mistakes raise when it is built."""

import datetime
import unittest

import _support
from slashd_plugin import Plugin, arg


def plugin_with(*args, capabilities=(), **command):
    p = Plugin("p", "1.0.0", capabilities=capabilities)
    p.command("cmd", "A command", args=list(args) if args else None, **command)(lambda call: "ok")
    return p


class Manifest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = _support.bindings()

    def test_arg_kinds_map_to_the_wit_arg_kind(self):
        t = self.b.types
        table = [
            (arg.text("a", "s"), t.ArgKind_Text()),
            (arg.integer("a", "s"), t.ArgKind_Integer()),
            (arg.number("a", "s"), t.ArgKind_Number()),
            (arg.boolean("a", "s"), t.ArgKind_Boolean()),
            (arg.duration("a", "s"), t.ArgKind_Duration()),
            (arg.choice("a", "s", ["x", "y"]), t.ArgKind_Choice(["x", "y"])),
            (arg.user("a", "s"), t.ArgKind_User()),
            (arg.session("a", "s"), t.ArgKind_Session()),
        ]
        for spec, kind in table:
            with self.subTest(kind=spec.kind):
                m = plugin_with(spec).manifest()
                (got,) = m.commands[0].args
                self.assertEqual(got.kind, kind)
                self.assertEqual((got.name, got.summary, got.required, got.rest, got.completes), ("a", "s", False, False, False))
                self.assertIsNone(got.default)

    def test_arg_options(self):
        table = [
            (arg.text("a", "s", required=True), dict(required=True)),
            (arg.text("a", "s", rest=True), dict(rest=True)),
            (arg.text("a", "s", completes=True), dict(completes=True)),
            (arg.text("a", "s", default="x y"), dict(default="x y")),
            (arg.integer("a", "s", default=3, min=1, max=10), dict(default="3", min=1.0, max=10.0)),
            (arg.number("a", "s", default=0.5, min=-1.5), dict(default="0.5", min=-1.5)),
            (arg.boolean("a", "s", default=True), dict(default="true")),
            (arg.boolean("a", "s", default=False), dict(default="false")),
            (
                arg.duration("a", "s", default=datetime.timedelta(minutes=1, seconds=30), max=datetime.timedelta(hours=1)),
                dict(default="90s", max=3600.0),
            ),
            (arg.duration("a", "s", default=datetime.timedelta(milliseconds=1500)), dict(default="1500ms")),
            (arg.duration("a", "s", default="1h30m", min=5), dict(default="1h30m", min=5.0)),
            (arg.choice("a", "s", ["x", "y"], default="y"), dict(default="y")),
        ]
        for spec, want in table:
            with self.subTest(spec=spec):
                (got,) = plugin_with(spec).manifest().commands[0].args
                for field, value in want.items():
                    self.assertEqual(getattr(got, field), value, field)

    def test_commands(self):
        t = self.b.types
        p = Plugin("hello", "0.1.0", capabilities=["kv", "http"])
        p.command("hello", "Say hello", args=[arg.text("name", "Who")], aliases=["hi"], confirm="Sure?")(lambda c: "")
        p.command("raw", "Untyped", min_role="admin", usage="/raw A B")(lambda c: "")
        p.command("plain", "Default usage", min_role="analyst")(lambda c: "")
        m = p.manifest()
        self.assertEqual((m.name, m.version), ("hello", "0.1.0"))
        self.assertEqual(m.capabilities, [t.Capability.KV, t.Capability.HTTP])
        hello, raw, plain = m.commands
        self.assertEqual(
            (hello.name, hello.aliases, hello.summary, hello.usage, hello.min_role, hello.confirm),
            ("hello", ["hi"], "Say hello", "/hello", t.Role.VIEWER, "Sure?"),
        )
        self.assertEqual(len(hello.args), 1)
        self.assertEqual((raw.args, raw.usage, raw.min_role, raw.confirm), (None, "/raw A B", t.Role.ADMIN, None))
        self.assertEqual((plain.usage, plain.min_role), ("/plain", t.Role.ANALYST))

    def test_every_wit_capability_is_accepted(self):
        t = self.b.types
        names = [c.name.lower() for c in t.Capability]
        self.assertEqual(names, ["commands", "stats", "sessions", "kv", "config", "http", "secrets", "progress", "jobs"])
        m = plugin_with(capabilities=names).manifest()
        self.assertEqual(m.capabilities, list(t.Capability))

    def test_mistakes_raise_when_built(self):
        def completer_for(command, name, completes):
            p = plugin_with(arg.text("name", "s", completes=completes))
            p.completer(command, name)(lambda r: [])
            return p.manifest

        def action_for(command):
            p = plugin_with()
            p.action("x", command=command)(lambda e: "")
            return p.manifest

        table = [
            ("unknown capability", lambda: Plugin("p", "1", capabilities=["kvv"]), "unknown capability 'kvv'"),
            ("log is no capability", lambda: Plugin("p", "1", capabilities=["log"]), "log needs no grant"),
            ("a string of capabilities", lambda: Plugin("p", "1", capabilities="kv"), "list of names"),
            ("no command", lambda: Plugin("p", "1").manifest(), "declares no command"),
            ("bad role", lambda: plugin_with(min_role="root"), "unknown role 'root'"),
            ("slash in name", lambda: Plugin("p", "1").command("/x", "s"), "without '/'"),
            ("twice", lambda: [plugin_with().command("cmd", "again")(lambda c: "")], "declared twice"),
            ("alias clash", lambda: [plugin_with().command("other", "s", aliases=["cmd"])(lambda c: "")], "declared twice"),
            ("same arg twice", lambda: plugin_with(arg.text("a", "s"), arg.integer("a", "s")), "declared twice"),
            ("rest not last", lambda: plugin_with(arg.text("a", "s", rest=True), arg.text("b", "s")), "only the last"),
            ("rest not text", lambda: arg.integer("a", "s", rest=True), "only a text argument"),
            ("min over max", lambda: arg.integer("a", "s", min=5, max=1), "min 5.0 is above max 1.0"),
            ("choice without choices", lambda: arg.choice("a", "s", []), "needs a list of choices"),
            ("choice as a string", lambda: arg.choice("a", "s", "xy"), "needs a list of choices"),
            ("arg not an Arg", lambda: plugin_with("name"), "args are built with"),
            ("completer of no command", lambda: completer_for("nope", "name", True)(), "unknown command /nope"),
            ("completer of no arg", lambda: completer_for("cmd", "nope", True)(), "no argument 'nope'"),
            ("completer of a plain arg", lambda: completer_for("cmd", "name", False)(), "completes=True"),
            ("action of no command", lambda: action_for("nope")(), "unknown command /nope"),
        ]
        for what, build, message in table:
            with self.subTest(what):
                with self.assertRaises((ValueError, TypeError)) as caught:
                    build()
                self.assertIn(message, str(caught.exception))

    def test_world_checks_and_exports(self):
        p = plugin_with(capabilities=["kv"])
        world = p.world()
        self.assertIn(self.b.world.WitWorld, world.__mro__)
        self.assertEqual(world.__name__, "WitWorld")
        self.assertEqual(world().manifest(), p.manifest())
        bad = Plugin("p", "1")
        with self.assertRaises(ValueError):
            bad.world()


if __name__ == "__main__":
    unittest.main()
