"""The template's app (sdk/python/template/app.py) declares and answers as documented."""

import importlib.util
import os
import unittest

import _support


def load_template():
    path = os.path.join(_support.SDK, "template", "app.py")
    spec = importlib.util.spec_from_file_location("template_app", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Template(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = _support.bindings()
        cls.app = load_template()

    def test_manifest(self):
        t = self.b.types
        m = self.app.WitWorld().manifest()
        self.assertEqual((m.name, m.capabilities), ("hello", []))
        (hello,) = m.commands
        self.assertEqual((hello.name, hello.min_role), ("hello", t.Role.VIEWER))
        self.assertEqual([(a.name, a.kind, a.required) for a in hello.args], [("name", t.ArgKind_Text(), False)])

    def test_hello_and_wave(self):
        t = self.b.types
        world = self.app.WitWorld()
        table = [
            ([("name", t.Value_Text("world"))], "Hello, **world**!", '{"name": "world"}', "world"),
            ([], "Hello, **ann**!", '{"name": "ann"}', "ann"),
        ]
        for values, body, data, name in table:
            with self.subTest(values=values):
                reply = world.invoke(_support.invocation(self.b, "hello", values=values))
                self.assertEqual((reply.body, reply.format, reply.data), (body, t.Format.MARKDOWN, data))
                self.assertEqual([(a.id, a.label) for a in reply.actions], [("wave", "Wave back")])
                pressed = world.on_action(_support.action_event(self.b, "hello", "wave", reply.data))
                self.assertEqual(pressed.body, f"bob waves back at {name}")


if __name__ == "__main__":
    unittest.main()
