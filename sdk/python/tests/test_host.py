"""Typed host calls: results convert to Python values; an `Err(text)` from the host raises
HostError(text), which a handler turns into a failed reply with the host's words."""

import unittest
from unittest import mock

import _support
from slashd_plugin import HostError, Plugin, commands, config, jobs, kv, log, progress, secrets, sessions, stats


class HostCalls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = _support.bindings()

    def patch(self, module, name, fake):
        patcher = mock.patch.object(getattr(self.b, module), name, fake)
        patcher.start()
        self.addCleanup(patcher.stop)

    def returning(self, value, seen=None):
        def fake(*args):
            if seen is not None:
                seen.append(args)
            return value

        return fake

    def test_results(self):
        record = object()
        table = [
            # (call, module, import, what it returns, the Python result, the import's args)
            (lambda: kv.get("k"), "kv", "get", b"v", b"v", ("k",)),
            (lambda: kv.get("k"), "kv", "get", None, None, ("k",)),
            (lambda: kv.get_text("k"), "kv", "get", "é".encode(), "é", ("k",)),
            (lambda: kv.get_text("k"), "kv", "get", None, None, ("k",)),
            (lambda: kv.get_json("k"), "kv", "get", b'{"a": 1}', {"a": 1}, ("k",)),
            (lambda: kv.get_json("k"), "kv", "get", None, None, ("k",)),
            (lambda: kv.set("k", b"\x00\x01"), "kv", "set", None, None, ("k", b"\x00\x01")),
            (lambda: kv.set("k", "é"), "kv", "set", None, None, ("k", "é".encode())),
            (lambda: kv.set_json("k", [1, "x"]), "kv", "set", None, None, ("k", b'[1, "x"]')),
            (lambda: kv.delete("k"), "kv", "delete", None, None, ("k",)),
            (lambda: kv.keys(), "kv", "list_keys", ["a", "b"], ["a", "b"], ("",)),
            (lambda: kv.keys("a"), "kv", "list_keys", ["a"], ["a"], ("a",)),
            (lambda: config.get("n"), "config", "get", "3", 3, ("n",)),
            (lambda: config.get("s"), "config", "get", '"hi"', "hi", ("s",)),
            (lambda: config.get("x"), "config", "get", None, None, ("x",)),
            (lambda: config.get("x", 7), "config", "get", None, 7, ("x",)),
            (lambda: config.all(), "config", "all", '{"n": 3, "l": [1]}', {"n": 3, "l": [1]}, ()),
            (lambda: secrets.get("token"), "secrets", "get", "abc", "abc", ("token",)),
            (lambda: secrets.get("token"), "secrets", "get", None, None, ("token",)),
            (lambda: progress.report("half", 0.5), "progress", "report", None, None, ("half", 0.5)),
            (lambda: progress.report("going"), "progress", "report", None, None, ("going", None)),
            (lambda: progress.cancelled(), "progress", "cancelled", True, True, ()),
            (lambda: sessions.current(), "sessions", "current", record, record, ()),
            (lambda: sessions.list_mine(5), "sessions", "list_mine", [record], [record], (5,)),
            (lambda: sessions.end_current(), "sessions", "end_current", None, None, ()),
            (lambda: sessions.connection(), "sessions", "connection", record, record, ()),
            (lambda: stats.get(), "stats", "get", record, record, ()),
            (lambda: commands.visible(), "commands", "visible", [record], [record], ()),
            (lambda: jobs.list_mine(), "jobs", "list_mine", [record], [record], ()),
            (lambda: jobs.cancel("m-1"), "jobs", "cancel", None, None, ("m-1",)),
        ]
        for call, module, name, value, want, args in table:
            with self.subTest(f"{module}.{name}", value=value):
                seen = []
                with mock.patch.object(getattr(self.b, module), name, self.returning(value, seen)):
                    self.assertEqual(call(), want)
                self.assertEqual(seen, [args])

    def test_errors_raise_host_error(self):
        calls = [
            (lambda: kv.get("k"), "kv", "get"),
            (lambda: kv.get_json("k"), "kv", "get"),
            (lambda: kv.set("k", "v"), "kv", "set"),
            (lambda: kv.delete("k"), "kv", "delete"),
            (lambda: kv.keys(), "kv", "list_keys"),
            (lambda: config.get("k"), "config", "get"),
            (lambda: config.all(), "config", "all"),
            (lambda: secrets.get("k"), "secrets", "get"),
            (lambda: progress.report("x"), "progress", "report"),
            (lambda: progress.cancelled(), "progress", "cancelled"),
            (lambda: sessions.current(), "sessions", "current"),
            (lambda: sessions.list_mine(), "sessions", "list_mine"),
            (lambda: sessions.end_current(), "sessions", "end_current"),
            (lambda: sessions.connection(), "sessions", "connection"),
            (lambda: stats.get(), "stats", "get"),
            (lambda: commands.visible(), "commands", "visible"),
            (lambda: jobs.list_mine(), "jobs", "list_mine"),
            (lambda: jobs.cancel("x"), "jobs", "cancel"),
        ]
        for call, module, name in calls:
            text = f"capability `{module}` is not granted to plugin p"

            def refuse(*args, text=text):
                raise self.b.Err(text)

            with self.subTest(f"{module}.{name}"):
                with mock.patch.object(getattr(self.b, module), name, refuse):
                    with self.assertRaises(HostError) as caught:
                        call()
                self.assertEqual(str(caught.exception), text)
                self.assertEqual(caught.exception.message, text)

    def test_an_ungranted_call_is_a_failed_reply_with_the_hosts_words(self):
        text = "capability `kv` is not granted to plugin p"

        def refuse(*args):
            raise self.b.Err(text)

        self.patch("kv", "get", refuse)
        p = Plugin("p", "1")
        p.command("c", "s")(lambda call: f"got {kv.get('k')}")
        with self.assertRaises(self.b.Err) as caught:
            p.invoke(_support.invocation(self.b, "c"))
        self.assertEqual(caught.exception.value, self.b.types.PluginError_Failed(text))

    def test_a_caught_host_error_lets_the_command_go_on(self):
        def refuse(*args):
            raise self.b.Err("capability `kv` is not granted to plugin p")

        self.patch("kv", "get", refuse)
        p = Plugin("p", "1")

        @p.command("c", "s")
        def c(call):
            try:
                kv.get("k")
            except HostError as e:
                return f"no kv: {e}"

        self.assertEqual(p.invoke(_support.invocation(self.b, "c")).body, "no kv: capability `kv` is not granted to plugin p")

    def test_bad_values(self):
        with self.assertRaises(TypeError):
            kv.set("k", {"a": 1})

    def test_log(self):
        with _support.LogCapture(self.b) as logs:
            log.debug("d")
            log.info("i")
            log.warn("w")
            log.error(ValueError("e"))
        self.assertEqual(logs.lines, [("debug", "d"), ("info", "i"), ("warn", "w"), ("error", "e")])

    def test_log_never_raises(self):
        def broken(level, message):
            raise RuntimeError("no log")

        self.patch("log", "log", broken)
        log.info("x")


if __name__ == "__main__":
    unittest.main()
