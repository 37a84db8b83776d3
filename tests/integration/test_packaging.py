"""The installed heartbeat-ops: what it imports is declared in pyproject.toml, and it never imports the dev server."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"heartbeat", "heartbeat_ops", "heartbeat_local"}
# Imported when present, with a fallback when not: no dependency of the CLI.
OPTIONAL = {"certifi"}  # botocore.httpsession: its own CA bundle otherwise


def imported_by(module: str) -> set[str]:
    """The top-level modules a fresh interpreter holds after importing module (and running --help)."""
    code = (
        f"import sys, contextlib, io; import {module} as m\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()): m.main(['--help'])\n"
        "import json; print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'lambda_src'}:{ROOT}", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    return set(json.loads(result.stdout))


def requirement(text: str) -> tuple[str, set[str], str]:
    """A requirement's distribution name (normalized), its extras and its marker."""
    spec, _, marker = text.partition(";")
    match = re.match(r"\s*([A-Za-z0-9._-]+)\s*(?:\[([^\]]*)\])?", spec)
    assert match, text
    extras = {e.strip() for e in (match.group(2) or "").split(",") if e.strip()}
    return normalized(match.group(1)), extras, marker


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(declared: list[str]) -> set[str]:
    """Every distribution that installing the declared requirements brings, by the installed metadata."""
    seen: set[str] = set()
    todo = [requirement(text)[:2] for text in declared]
    while todo:
        name, extras = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in importlib.metadata.requires(name) or []:
            child, child_extras, marker = requirement(text)
            wanted = re.search(r"""extra\s*==\s*['"]([^'"]+)['"]""", marker)
            if wanted is None or wanted.group(1) in extras:
                todo.append((child, child_extras))
    return seen


def test_everything_the_cli_imports_is_declared_and_the_dev_server_is_not_imported() -> None:
    modules = imported_by("heartbeat_ops.__main__")
    assert "heartbeat_local" not in modules  # a pipx install has none of make serve's dependencies
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    installed = closure(declared)
    owners = importlib.metadata.packages_distributions()
    third_party = modules - set(sys.stdlib_module_names) - FIRST_PARTY - OPTIONAL - {"__main__", "_distutils_hack"}
    undeclared = {
        module: owners[module] for module in third_party
        if module in owners and not {normalized(d) for d in owners[module]} & installed
    }  # fmt: skip
    assert undeclared == {}, "imported by heartbeat-ops but not brought by pyproject.toml's dependencies"
