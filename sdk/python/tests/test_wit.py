"""The package's WIT is a copy of plugin-api/wit/since_v0.2.0: one source of truth."""

import filecmp
import os
import unittest

from _support import REPO, SDK


def tree(root):
    found = {}
    for directory, _, files in os.walk(root):
        for f in files:
            path = os.path.join(directory, f)
            found[os.path.relpath(path, root)] = path
    return found


class WitCopy(unittest.TestCase):
    def test_the_shipped_wit_is_the_plugin_api_wit(self):
        source = os.path.join(REPO, "plugin-api", "wit", "since_v0.2.0")
        copy = os.path.join(SDK, "slashd_plugin", "wit")
        self.assertTrue(os.path.isdir(source), f"{source} is missing: run the tests from the repo")
        want, got = tree(source), tree(copy)
        fix = "run sdk/python/sync-wit.sh"
        self.assertEqual(sorted(want), sorted(got), f"the files differ; {fix}")
        for rel in want:
            self.assertTrue(filecmp.cmp(want[rel], got[rel], shallow=False), f"{rel} differs; {fix}")

    def test_the_package_version_is_the_api_version(self):
        import slashd_plugin

        with open(os.path.join(SDK, "slashd_plugin", "wit", "plugin.wit")) as f:
            wit = f.read()
        self.assertIn(f"package slashd:plugin@{slashd_plugin.API_VERSION};", wit)
        self.assertEqual(slashd_plugin.__version__, slashd_plugin.API_VERSION)
        with open(os.path.join(SDK, "pyproject.toml")) as f:
            self.assertIn(f'version = "{slashd_plugin.API_VERSION}"', f.read())


if __name__ == "__main__":
    unittest.main()
