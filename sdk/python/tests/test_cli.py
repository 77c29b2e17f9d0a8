"""`slashd-plugin`: finding the app, the python path, the shipped WIT."""

import contextlib
import io
import os
import tempfile
import unittest
from pathlib import Path

import _support
from slashd_plugin import cli


@contextlib.contextmanager
def cwd(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


class Cli(unittest.TestCase):
    def test_resolve_app(self):
        with tempfile.TemporaryDirectory() as d:
            d = Path(d).resolve()
            (d / "app.py").write_text("")
            (d / "plugin.py").write_text("")
            (d / "pkg").mkdir()
            (d / "pkg" / "__init__.py").write_text("")
            with cwd(d):
                ok = [
                    ("app.py", (d, "app")),
                    (str(d / "app.py"), (d, "app")),
                    ("app", (d, "app")),
                    ("pkg", (d, "pkg")),
                ]
                for given, want in ok:
                    with self.subTest(given=given):
                        self.assertEqual(cli.resolve_app(given), want)
                bad = [
                    ("missing.py", "no such file"),
                    ("missing", "no module missing"),
                    ("plugin.py", "may not be called 'plugin'"),
                ]
                for given, message in bad:
                    with self.subTest(given=given):
                        with self.assertRaises(SystemExit) as caught:
                            cli.resolve_app(given)
                        self.assertIn(message, str(caught.exception))

    def test_python_path(self):
        paths = cli.python_path(Path("."))
        self.assertEqual(paths[0], str(Path(".").resolve()))
        self.assertIn(str(Path(_support.SDK).resolve()), paths)
        self.assertEqual(len(paths), len(set(paths)))

    def test_the_shipped_wit(self):
        self.assertTrue((cli.wit_dir() / "plugin.wit").is_file())
        self.assertTrue((cli.wit_dir() / "deps" / "http" / "http.wit").is_file())
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(cli.main(["wit"]), 0)
        self.assertEqual(out.getvalue().strip(), str(cli.wit_dir()))

    def test_bindings(self):
        _support.bindings()  # fails with how to install componentize-py when it is missing
        with tempfile.TemporaryDirectory() as d:
            cli.main(["bindings", d])
            self.assertTrue((Path(d) / "wit_world" / "imports" / "slashd_plugin_types.py").is_file())
            self.assertTrue((Path(d) / "componentize_py_types.py").is_file())


if __name__ == "__main__":
    unittest.main()
