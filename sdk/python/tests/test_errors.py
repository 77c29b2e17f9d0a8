"""Exceptions become `plugin-error`s, never traps: Usage → usage, Failed and anything else
→ failed; in `complete` an exception answers [] and is logged."""

import unittest

import _support
from slashd_plugin import Failed, HostError, Plugin, Reply, Usage


def raising(exc):
    def handler(_):
        raise exc

    return handler


class Errors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = _support.bindings()

    def error_of(self, run):
        with self.assertRaises(self.b.Err) as caught:
            run()
        return caught.exception.value

    def test_invoke(self):
        t = self.b.types
        table = [
            (Usage("give a name"), t.PluginError_Usage("give a name")),
            (Failed("it broke"), t.PluginError_Failed("it broke")),
            (HostError("capability `kv` is not granted to plugin p"), t.PluginError_Failed("capability `kv` is not granted to plugin p")),
            (ValueError("bad thing"), t.PluginError_Failed("ValueError: bad thing")),
            (KeyError("name"), t.PluginError_Failed("KeyError: 'name'")),
            (ZeroDivisionError("division by zero"), t.PluginError_Failed("ZeroDivisionError: division by zero")),
            (RuntimeError(), t.PluginError_Failed("RuntimeError")),
            (SystemExit(3), t.PluginError_Failed("SystemExit: 3")),
            (self.b.Err(t.PluginError_Usage("raw usage")), t.PluginError_Usage("raw usage")),
            (self.b.Err("raw text"), t.PluginError_Failed("raw text")),
        ]
        for exc, want in table:
            with self.subTest(exc=exc):
                p = Plugin("p", "1")
                p.command("c", "s")(raising(exc))
                with _support.LogCapture(self.b) as logs:
                    self.assertEqual(self.error_of(lambda: p.invoke(_support.invocation(self.b, "c"))), want)
                expected = not isinstance(exc, (Usage, Failed, self.b.Err))
                self.assertEqual(bool(logs.lines), expected, logs.lines)
                if expected:
                    level, message = logs.lines[0]
                    self.assertEqual(level, "error")
                    self.assertIn("Traceback", message)

    def test_a_bad_return_value_fails(self):
        t = self.b.types
        table = [
            (None, "TypeError: a handler must return a str or a Reply, not NoneType"),
            (42, "TypeError: a handler must return a str or a Reply, not int"),
        ]
        for returned, message in table:
            with self.subTest(returned=returned):
                p = Plugin("p", "1")
                p.command("c", "s")(lambda call, r=returned: r)
                got = self.error_of(lambda: p.invoke(_support.invocation(self.b, "c")))
                self.assertEqual(got, t.PluginError_Failed(message))

    def test_an_unknown_command_fails(self):
        p = Plugin("p", "1")
        p.command("c", "s")(lambda call: "")
        got = self.error_of(lambda: p.invoke(_support.invocation(self.b, "other")))
        self.assertEqual(got, self.b.types.PluginError_Failed("no such command /other"))

    def test_on_action(self):
        t = self.b.types
        p = Plugin("p", "1")
        p.command("c", "s")(lambda call: "")
        p.command("d", "s")(lambda call: "")
        p.action("wave")(lambda ev: f"{ev.caller.name} waves at {ev.data['name']}")
        p.action("wave", command="d")(lambda ev: Reply.markdown("only d"))
        p.action("boom")(raising(ValueError("bad thing")))
        p.action("usage")(raising(Usage("no")))
        event = lambda action, command="c": _support.action_event(self.b, command, action, '{"name": "ann"}')  # noqa: E731
        self.assertEqual(p.on_action(event("wave")), t.Reply("bob waves at ann", t.Format.PLAIN, None, False, []))
        self.assertEqual(p.on_action(event("wave", "d")).body, "only d")
        table = [
            ("boom", t.PluginError_Failed("ValueError: bad thing")),
            ("usage", t.PluginError_Usage("no")),
            ("nope", t.PluginError_Failed("no such action nope")),
        ]
        for action, want in table:
            with self.subTest(action=action), _support.LogCapture(self.b):
                self.assertEqual(self.error_of(lambda: p.on_action(event(action))), want)

    def test_on_action_without_handlers(self):
        p = Plugin("p", "1")
        p.command("c", "s")(lambda call: "")
        got = self.error_of(lambda: p.on_action(_support.action_event(self.b, "c", "wave")))
        self.assertEqual(got, self.b.types.PluginError_Failed("no such action wave"))

    def test_complete(self):
        t = self.b.types
        from slashd_plugin import arg

        table = [
            (lambda r: ["web", "worker"], [t.Completion("web", None), t.Completion("worker", None)], False),
            (lambda r: [("web", "the site"), ("db", None)], [t.Completion("web", "the site"), t.Completion("db", None)], False),
            (lambda r: [s for s in ["web", "api"] if s.startswith(r.partial)], [t.Completion("web", None)], False),
            (lambda r: None, [], False),
            (raising(ValueError("bad thing")), [], True),
            (lambda r: [42], [], True),
        ]
        for completer, want, logged in table:
            with self.subTest(want=want, logged=logged):
                p = Plugin("p", "1")
                p.command("deploy", "s", args=[arg.text("service", "s", completes=True)])(lambda call: "")
                p.completer("deploy", "service")(completer)
                p.manifest()
                with _support.LogCapture(self.b) as logs:
                    got = p.complete(_support.completion_request(self.b, "deploy", "service", "w"))
                self.assertEqual(got, want)
                self.assertEqual(bool(logs.lines), logged)
                if logged:
                    self.assertIn("completing /deploy service", logs.lines[0][1])

    def test_complete_without_a_completer(self):
        p = Plugin("p", "1")
        p.command("c", "s")(lambda call: "")
        self.assertEqual(p.complete(_support.completion_request(self.b, "c", "x")), [])

    def test_the_world_class_maps_errors_too(self):
        p = Plugin("p", "1")
        p.command("c", "s")(raising(ValueError("bad thing")))
        world = p.world()()
        with _support.LogCapture(self.b):
            got = self.error_of(lambda: world.invoke(_support.invocation(self.b, "c")))
        self.assertEqual(got, self.b.types.PluginError_Failed("ValueError: bad thing"))
        self.assertEqual(world.complete(_support.completion_request(self.b, "c", "x")), [])


if __name__ == "__main__":
    unittest.main()
