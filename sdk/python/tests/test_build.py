"""A real build (about 20 s): componentize-py bundles the SDK into the component."""

import contextlib
import io
import os
import tempfile
import unittest
from pathlib import Path

import _support
from slashd_plugin import SDK_MARKER, cli


class Build(unittest.TestCase):
    def test_the_component_contains_the_sdk(self):
        _support.bindings()  # fails with how to install componentize-py when it is missing
        app = os.path.join(_support.HERE, "fixtures", "sdkprobe.py")
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "sdkprobe.wasm"
            with contextlib.redirect_stderr(io.StringIO()):
                cli.main(["build", app, "-o", str(out)])
            wasm = out.read_bytes()
        self.assertEqual(wasm[:4], b"\0asm")
        self.assertEqual(wasm[4:8], b"\x0d\x00\x01\x00", "a component, not a core module")
        self.assertIn(SDK_MARKER.encode(), wasm)
        # The app's own code and the SDK's modules are in the snapshot.
        self.assertIn(b"sdkprobe", wasm)
        self.assertIn(b"slashd_plugin/_plugin.py", wasm)
        self.assertIn(b"slashd:plugin/kv@0.2.0", wasm)


if __name__ == "__main__":
    unittest.main()
