"""Each WIT `value` variant becomes a plain Python value; calls, completion requests and
button presses become plain objects."""

import datetime
import unittest

import _support
from slashd_plugin import ActionEvent, Call, Caller, CompletionRequest, Session, User
from slashd_plugin._types import convert_value


class Values(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = _support.bindings()

    def test_each_variant(self):
        t = self.b.types
        table = [
            (t.Value_Text("two words"), "two words", str),
            (t.Value_Integer(-42), -42, int),
            (t.Value_Number(2.5), 2.5, float),
            (t.Value_Boolean(True), True, bool),
            (t.Value_Boolean(False), False, bool),
            (t.Value_DurationMs(90_500), datetime.timedelta(seconds=90, milliseconds=500), datetime.timedelta),
            (t.Value_Choice("prod"), "prod", str),
            (t.Value_User(t.UserRef(id="u-1", name="bob", role=t.Role.ANALYST)), User("u-1", "bob", "analyst"), User),
            (t.Value_Session(t.SessionRef(id="s-9", title="Ops")), Session("s-9", "Ops"), Session),
        ]
        for value, want, kind in table:
            with self.subTest(value=value):
                got = convert_value(value)
                self.assertEqual(got, want)
                self.assertIs(type(got), kind)
        kinds = {type(v).__name__ for v, _, _ in table}
        self.assertEqual(kinds, {c.__name__ for c in t.Value.__args__}, "a value variant is not tested")

    def test_a_call(self):
        t = self.b.types
        inv = _support.invocation(
            self.b,
            "hello",
            args=["--count", "3", "x"],
            raw_args="--count 3 x",
            values=[("count", t.Value_Integer(3)), ("name", t.Value_Text("x"))],
            role="admin",
        )
        call = Call.from_wit(inv)
        self.assertEqual(call.id, "m-1")
        self.assertEqual(call.command, "hello")
        self.assertEqual(call.args, ["--count", "3", "x"])
        self.assertEqual(call.raw_args, "--count 3 x")
        self.assertEqual(call.values, {"count": 3, "name": "x"})
        self.assertEqual(call.caller, Caller("user-ann", "ann", "admin"))
        self.assertEqual(call.session, Session("s-1", "Ops"))
        self.assertEqual(call.connection_id, "c-1")

    def test_roles(self):
        table = [
            ("viewer", "viewer", True),
            ("viewer", "analyst", False),
            ("analyst", "analyst", True),
            ("admin", "analyst", True),
            ("analyst", "admin", False),
        ]
        for role, required, allowed in table:
            with self.subTest(role=role, required=required):
                self.assertEqual(Caller("u", "n", role).allows(required), allowed)
        with self.assertRaises(ValueError):
            Caller("u", "n", "viewer").allows("root")

    def test_a_completion_request(self):
        t = self.b.types
        req = _support.completion_request(self.b, "deploy", "service", "we")
        req.values = [t.NamedValue("env", t.Value_Choice("prod"))]
        got = CompletionRequest.from_wit(req)
        self.assertEqual((got.command, got.arg, got.partial, got.values), ("deploy", "service", "we", {"env": "prod"}))
        self.assertEqual(got.caller.name, "ann")

    def test_an_action_event(self):
        table = [
            ('{"name": "x"}', {"name": "x"}),
            ("[1, 2]", [1, 2]),
            (None, None),
            ("not json", None),
        ]
        for data, want in table:
            with self.subTest(data=data):
                ev = ActionEvent.from_wit(_support.action_event(self.b, "hello", "wave", data))
                self.assertEqual((ev.command, ev.action, ev.message_id), ("hello", "wave", "m-2"))
                self.assertEqual((ev.data, ev.raw_data), (want, data))
                self.assertEqual(ev.caller.name, "bob")


if __name__ == "__main__":
    unittest.main()
