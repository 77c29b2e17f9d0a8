"""Replies and buttons become the WIT `reply`; a str return is a plain reply."""

import json
import unittest

import _support
from slashd_plugin import Button, Plugin, Reply


class Replies(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = _support.bindings()

    def wit(self, reply):
        return reply.to_wit(self.b)

    def test_building(self):
        t = self.b.types
        table = [
            (Reply.plain("hi"), dict(body="hi", format=t.Format.PLAIN, data=None, ephemeral=False, actions=[])),
            (Reply.markdown("**hi**"), dict(body="**hi**", format=t.Format.MARKDOWN)),
            (Reply.json({"a": [1, 2]}), dict(body='{"a": [1, 2]}', format=t.Format.JSON)),
            (Reply.plain("x").data({"k": "v"}), dict(data='{"k": "v"}')),
            (Reply.plain("x").data([1]).data(None), dict(data=None)),
            (Reply.plain("x").data(0), dict(data="0")),
            (Reply.plain("x").ephemeral(), dict(ephemeral=True)),
        ]
        for reply, want in table:
            with self.subTest(reply=reply):
                got = self.wit(reply)
                for field, value in want.items():
                    self.assertEqual(getattr(got, field), value, field)

    def test_buttons(self):
        t = self.b.types
        got = self.wit(
            Reply.markdown("x")
            .button("wave", "Wave back")
            .button("nuke", "Delete", style="danger", min_role="admin", confirm="Sure?", once=True)
            .add(Button("ok", "OK", style="primary"))
        )
        self.assertEqual(
            got.actions,
            [
                t.Action("wave", "Wave back", t.ActionStyle.SECONDARY, t.Role.VIEWER, None, False),
                t.Action("nuke", "Delete", t.ActionStyle.DANGER, t.Role.ADMIN, "Sure?", True),
                t.Action("ok", "OK", t.ActionStyle.PRIMARY, t.Role.VIEWER, None, False),
            ],
        )

    def test_mistakes(self):
        table = [
            (lambda: Reply.plain("x").button("a", "b", style="loud"), "unknown button style"),
            (lambda: Reply.plain("x").button("a", "b", min_role="root"), "unknown role"),
            (lambda: Reply("x", "html"), "unknown reply format"),
            (lambda: Reply.plain("x").data(object()), "not JSON serializable"),
        ]
        for build, message in table:
            with self.subTest(message=message):
                with self.assertRaises((ValueError, TypeError)) as caught:
                    build()
                self.assertIn(message, str(caught.exception))

    def test_what_a_handler_returns(self):
        t = self.b.types
        table = [
            ("plain text", t.Reply("plain text", t.Format.PLAIN, None, False, [])),
            (Reply.markdown("*m*").data({"n": 1}), t.Reply("*m*", t.Format.MARKDOWN, json.dumps({"n": 1}), False, [])),
        ]
        for returned, want in table:
            with self.subTest(returned=returned):
                p = Plugin("p", "1")
                p.command("c", "s")(lambda call, r=returned: r)
                self.assertEqual(p.invoke(_support.invocation(self.b, "c")), want)


if __name__ == "__main__":
    unittest.main()
