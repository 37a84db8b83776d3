"""Every shell command shown in README.md and docs/*.md still runs, and prints what the page shows.

The convention, for whoever writes a page:
- Every fenced block names its language (``console``, ``sh``, ``text``, ``json``, ``python``, ...).
- A shell block (``console``, ``sh``, ``bash``, ``shell``) is preceded by one of these comments:
  ``<!-- check -->`` runs it here; ``<!-- check: make serve -->`` runs it against a running
  ``make serve`` (this page's own, or one started with the defaults); ``<!-- not checked: why -->``
  says why not (it needs an AWS account, it takes minutes, ...). A block of any language marked
  ``<!-- check: console -->`` holds lines that this page's ``make serve`` must print by the end.
- In a ``console`` block, ``$ `` starts a command (a line ending in ``\\`` continues it) and the
  lines after it are its output, compared after times, ages, durations and runs of spaces are
  evened out. A ``console`` block whose command is ``[VAR=value ...] make serve`` starts it; the
  lines it shows must appear on its console by the end of the page. In an ``sh`` block every
  line is a command, and each must exit 0.

The commands of one page run in order in one bash session (a function or an ``export`` carries
over), in the checkout, with ``.venv/bin`` first on PATH (as ``source .venv/bin/activate`` does) and
no AWS configuration, as on a fresh machine.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = {"console", "sh", "bash", "shell"}
MARKER = re.compile(r"<!--\s*(check(?::\s*(?:make serve|console))?|not checked:\s*\S.*?)\s*-->")
# Pages other changes add; the front page links them before they land.
PENDING_PAGES = {"docs/authentication.md"}
SERVE_COMMAND = re.compile(r"((?:[A-Z_]+=\S+\s+)*)make serve")
SERVE_PORTS = (8080, 8081)  # make serve's defaults, as the pages show them
COMMAND_SECONDS = 120  # a bound on waiting for one command, not an assertion about speed
# What changes from run to run, evened out on both sides before comparing.
VOLATILE = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z"), "<time>"),
    (re.compile(r"\b\d+[smhd] ago\b"), "<age>"),
    (re.compile(r"^\d\d:\d\d:\d\d "), "<clock> "),
    (re.compile(r"\b\d+(?:\.\d+)?ms\b"), "<ms>"),
    (re.compile(r"\(\d+ execution environments\)"), "(<n> execution environments)"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<request id>"),
    (re.compile(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT"), "<http date>"),
    (re.compile(r"\s+"), " "),
]


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    marker: str | None
    body: list[str]

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


@dataclass
class Command:
    text: str
    expected: list[str] | None  # None: only its exit status counts
    block: Block


@dataclass
class Serve:
    """A make serve this page started, and the console lines it must show by the end of the page."""

    process: subprocess.Popen[bytes]
    log: Path
    expected: list[str] = field(default_factory=list)
    where: str = ""


def fenced_blocks(page: Path) -> Iterator[Block]:
    lines = page.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = re.match(r"^(\s*)(`{3,}|~{3,})(.*)$", lines[index])
        if not opening:
            index += 1
            continue
        fence, language = opening.group(2), opening.group(3).strip().split(" ")[0]
        before = [line for line in lines[:index] if line.strip()]
        found = MARKER.search(before[-1]) if before else None
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        yield Block(page, index + 1, language, found.group(1) if found else None, lines[index + 1 : end])
        index = end + 1


def commands(block: Block) -> list[Command]:
    found: list[Command] = []
    if block.language == "console":
        for line in block.body:
            if line.startswith("$ ") and not (found and found[-1].text.endswith("\\")):
                found.append(Command(line[2:], [], block))
            elif found and found[-1].text.endswith("\\"):
                found[-1].text += "\n" + line
            elif found and found[-1].expected is not None:
                found[-1].expected.append(line)
        return found
    for line in block.body:
        if found and found[-1].text.endswith("\\"):
            found[-1].text += "\n" + line
        elif line.strip() and not line.lstrip().startswith("#"):
            found.append(Command(line, None, block))
    return found


def evened(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        even = line
        for pattern, replacement in VOLATILE:
            even = pattern.sub(replacement, even)
        out.append(even.strip())
    while out and not out[0]:
        out.pop(0)
    while out and not out[-1]:
        out.pop()
    return out


class Shell:
    """One bash session for a page: each command's output (stdout and stderr, as a terminal shows) and status."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"], cwd=ROOT, env=env, text=True, start_new_session=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def run(self, command: str) -> tuple[list[str], int]:
        assert self.process.stdin is not None
        done = f"__command_done_{uuid.uuid4().hex}__"
        self.process.stdin.write(f"{{ {command}\n}} </dev/null 2>&1\nprintf '\\n{done} %s\\n' \"$?\"\n")
        self.process.stdin.flush()
        output: list[str] = []
        deadline = time.monotonic() + COMMAND_SECONDS
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no end after {COMMAND_SECONDS} s: {command}") from None
            if line is None:
                raise AssertionError(f"the shell ended during: {command}")
            if line.startswith(done):
                return output, int(line.split()[-1])
            output.append(line.rstrip("\n"))

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def fresh_machine_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TABLE_NAME", "STALE_", "SWEEP_"))}
    env.update(
        PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def start_serve(command: Command, env: dict[str, str], log: Path) -> Serve:
    for port in SERVE_PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                pytest.fail(f"{command.block.where} starts make serve on port {port}, which is in use: stop it")
    with log.open("wb") as sink:
        process = subprocess.Popen(
            ["bash", "-c", command.text], cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 300  # a first run installs .venv
    while "Heartbeat endpoint:" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{command.block.where}: make serve did not start:\n{log.read_text()}")
        time.sleep(0.1)
    return Serve(process, log, command.expected or [], command.block.where)


def stop_serve(serve: Serve) -> None:
    if serve.process.poll() is None:
        os.killpg(serve.process.pid, signal.SIGTERM)
        try:
            serve.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(serve.process.pid, signal.SIGKILL)
            serve.process.wait()


def checked_pages() -> list[Path]:
    return [page for page in PAGES if any(b.marker and b.marker.startswith("check") for b in fenced_blocks(page))]


def test_every_block_names_its_language_and_every_shell_block_says_whether_it_is_checked() -> None:
    problems = []
    for page in PAGES:
        for block in fenced_blocks(page):
            if not block.language:
                problems.append(f"{block.where}: a fenced block with no language")
            elif block.language in SHELL and block.marker is None:
                problems.append(f"{block.where}: a shell block with no <!-- check --> or <!-- not checked: why -->")
    assert problems == []


def anchors(page: Path) -> set[str]:
    """The forge's anchors for a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"(?m)^#+\s+(.*)$", page.read_text())
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_every_link_between_pages_resolves() -> None:
    problems = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            if not path.exists():
                if str(path.relative_to(ROOT)) not in PENDING_PAGES:
                    problems.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                problems.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert problems == []


@pytest.mark.parametrize("page", checked_pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_the_commands_a_page_shows_run_and_print_what_it_shows(page: Path, tmp_path: Path) -> None:
    env = fresh_machine_env()
    shell = Shell(env)
    serve: Serve | None = None
    try:
        for block in fenced_blocks(page):
            if not (block.marker and block.marker.startswith("check")):
                continue
            if block.marker == "check: console":
                assert serve is not None, f"{block.where}: console lines, but no make serve started above them"
                serve.expected += block.body
                continue
            for command in commands(block):
                if SERVE_COMMAND.fullmatch(command.text.strip()):
                    if serve is not None:
                        stop_serve(serve)
                    serve = start_serve(command, env, tmp_path / f"serve-{block.line}.log")
                    continue
                if block.marker == "check: make serve" and serve is None:
                    serve = start_serve(Command("make serve", [], block), env, tmp_path / "serve.log")
                output, status = shell.run(command.text)
                assert status == 0, f"{block.where}: exit {status}: {command.text}\n" + "\n".join(output)
                if command.expected is not None:
                    assert evened(output) == evened(command.expected), f"{block.where}: {command.text}"
        if serve is not None:
            console = set(evened(serve.log.read_text(errors="replace").splitlines()))
            missing = [line for line in evened(serve.expected) if line not in console]
            assert missing == [], f"{serve.where}: make serve's console lacks these lines"
    finally:
        shell.close()
        if serve is not None:
            stop_serve(serve)


def test_the_front_page_is_at_most_200_lines() -> None:
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= 200, f"README.md is {lines} lines: move the depth to docs/"
