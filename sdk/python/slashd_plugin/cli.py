"""``slashd-plugin``: build a plugin component with componentize-py and the WIT shipped in
this package.

    slashd-plugin build app.py [-o app.wasm]     a component from app.py (or a module name)
    slashd-plugin bindings DIR                   the generated bindings, for tests and IDEs
    slashd-plugin wit                            where the shipped WIT is
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import List, Optional, Sequence

#: The componentize-py this SDK is built and tested with (pyproject.toml pins it too).
COMPONENTIZE_PY = "0.25.1"
WORLD = "plugin"
# Run componentize-py's CLI in the interpreter running this one (the venv's), whatever PATH.
_RUNNER = "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())"
# Module names an app may not have: the world's, the bindings', the SDK's own.
_RESERVED = {WORLD, "wit_world", "slashd_plugin", "componentize_py_types", "componentize_py_runtime"}


def wit_dir() -> Path:
    """The WIT folder shipped in the package (a copy of plugin-api/wit/since_v0.2.0)."""
    return Path(__file__).resolve().parent / "wit"


def sdk_root() -> Path:
    """The directory holding the `slashd_plugin` package (site-packages, or sdk/python for
    an editable install): on the component's python path, so the SDK is bundled."""
    return Path(__file__).resolve().parent.parent


def _componentize_py(args: Sequence[str]) -> List[str]:
    try:
        import componentize_py  # noqa: F401
    except ImportError:
        raise SystemExit(
            f"slashd-plugin: componentize-py is not installed in {sys.executable}; "
            f"pip install componentize-py=={COMPONENTIZE_PY}"
        ) from None
    return [sys.executable, "-c", _RUNNER, "-d", str(wit_dir()), "-w", WORLD, *args]


def python_path(app_dir: Path) -> List[str]:
    """What componentize-py searches for modules: the app's directory, the SDK's, and this
    interpreter's site-packages (pure-Python dependencies of the app), each once."""
    paths = [app_dir.resolve(), sdk_root()]
    purelib = sysconfig.get_paths().get("purelib")
    if purelib and Path(purelib).is_dir():
        paths.append(Path(purelib).resolve())
    seen: List[str] = []
    for p in paths:
        if str(p) not in seen:
            seen.append(str(p))
    return seen


def resolve_app(app: str) -> "tuple[Path, str]":
    """`app.py`, `dir/app.py` or a module name `app` → (its directory, the module name)."""
    path = Path(app)
    if app.endswith(".py") or path.is_file():
        if not path.is_file():
            raise SystemExit(f"slashd-plugin: no such file {app}")
        directory, module = path.resolve().parent, path.stem
    elif path.is_dir() and (path / "__init__.py").is_file():
        directory, module = path.resolve().parent, path.resolve().name
    else:
        directory, module = Path.cwd(), app
        if not ((directory / f"{module}.py").is_file() or (directory / module / "__init__.py").is_file()):
            raise SystemExit(f"slashd-plugin: no module {module} in {directory} (give a file: app.py)")
    if module in _RESERVED or not module.isidentifier():
        raise SystemExit(f"slashd-plugin: rename {module}: the app module may not be called {module!r}")
    return directory, module


def build(app: str, out: Optional[str] = None, quiet: bool = False) -> Path:
    """Build the component; returns its path. Fails (SystemExit) with componentize-py's
    output when the build does, or when the component lacks the SDK."""
    directory, module = resolve_app(app)
    target = Path(out) if out else Path.cwd() / f"{module}.wasm"
    cmd = _componentize_py(["componentize"])
    for p in python_path(directory):
        cmd += ["-p", p]
    cmd += [module, "-o", str(target)]
    if not quiet:
        print(f"slashd-plugin: building {module} from {directory} → {target}", file=sys.stderr)
    started = time.monotonic()
    env = dict(os.environ)
    # The paths are given explicitly; componentize-py would add $VIRTUAL_ENV's as well.
    env.pop("VIRTUAL_ENV", None)
    if not os.environ.get("SLASHD_PLUGIN_DEBUG"):
        env["RUST_BACKTRACE"] = "0"  # the Python traceback is what an author needs
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout)
        raise SystemExit(f"slashd-plugin: componentize-py failed (exit {done.returncode}){_cause(done.stdout)}")
    if not quiet and done.stdout.strip() and done.stdout.strip() != "Component built successfully":
        sys.stderr.write(done.stdout)
    from . import SDK_MARKER

    if SDK_MARKER.encode() not in target.read_bytes() and _imports_sdk(directory, module):
        raise SystemExit(f"slashd-plugin: {target} does not contain the slashd_plugin SDK")
    if not quiet:
        size = target.stat().st_size
        print(
            f"slashd-plugin: built {target} ({size / 1e6:.1f} MB) in {time.monotonic() - started:.1f}s",
            file=sys.stderr,
        )
    return target


def _cause(output: str) -> str:
    """The error under componentize-py's "Caused by:", for the last line."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "Caused by:":
            rest = [x.strip() for x in lines[i + 1 :] if x.strip()]
            if rest:
                return f": {rest[0]}"
    return ""


def _imports_sdk(directory: Path, module: str) -> bool:
    source = directory / f"{module}.py"
    if not source.is_file():
        source = directory / module / "__init__.py"
    try:
        return "slashd_plugin" in source.read_text(encoding="utf-8")
    except OSError:
        return False


def bindings(out: str) -> Path:
    """Write the generated bindings (`wit_world`, `componentize_py_types`) to `out`: put
    it on sys.path to run a plugin's handlers in plain Python (the imports raise
    NotImplementedError there: replace the ones a test needs)."""
    done = subprocess.run(_componentize_py(["bindings", out]), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout)
        raise SystemExit(f"slashd-plugin: componentize-py bindings failed (exit {done.returncode})")
    return Path(out)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="slashd-plugin", description="Build slashd plugins written in Python.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build a plugin component")
    b.add_argument("app", help="the app: a file (app.py) or a module name in the current directory")
    b.add_argument("-o", "--output", help="the component to write (default: APP.wasm here)")
    b.add_argument("-q", "--quiet", action="store_true")
    g = sub.add_parser("bindings", help="write the generated bindings to a directory")
    g.add_argument("dir")
    sub.add_parser("wit", help="print the shipped WIT directory")
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.app, args.output, args.quiet)
    elif args.command == "bindings":
        bindings(args.dir)
    elif args.command == "wit":
        print(wit_dir())
    return 0


if __name__ == "__main__":
    sys.exit(main())
