"""Every shell snippet of README.md and docs/*.md runs, as pasted, against a real server.

A file's ```sh / ```bash blocks run in order in one ``bash`` session (state
carries from block to block, as in a terminal where a reader pastes them one
after the other) with ``set -euo pipefail``, so any failing command fails the
test. ```console blocks are transcripts: each ``$ command`` runs and its
output (stdout and stderr, as a terminal shows them) must equal the lines
that follow it.

The session runs in a fresh "clone": a directory whose entries link to this
checkout, except ``vbs-data``, which is the data dir of a fresh ``vbs serve``
(first start, generated admin password) so snippets that read
``vbs-data/admin-password`` or write ``vbs-data/volumes/ID.img`` find them.
The server listens on a free port; ``127.0.0.1:8799`` (the documented
default) is the one text substitution made. ``vbs`` is on ``PATH`` through
``.venv/bin`` as the README tells the reader to set it up.

A block preceded by ``<!-- not-run: REASON -->`` is skipped; the reason is
mandatory and such exceptions are counted (few are allowed).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.server import (  # noqa: F401 - fixtures
    REPO_ROOT,
    RunningServer,
    vbs_server_factory,
)

DOC_FILES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
SHELL_LANGS = {"sh", "bash", "shell"}
CONSOLE_LANGS = {"console"}
MAX_NOT_RUN = 3
DEFAULT_ADDRESS = "127.0.0.1:8799"
_FENCE = re.compile(r"^```\s*([\w-]*)\s*$")
_NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Snippet:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    not_run: str | None  # the reason, when marked not-run

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO_ROOT)}:{self.line}"


def snippets(path: Path) -> list[Snippet]:
    """Shell and console blocks of one markdown file, in order."""
    found: list[Snippet] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(1).lower(), i
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        i += 1
        if lang not in SHELL_LANGS | CONSOLE_LANGS:
            continue
        prev = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = _NOT_RUN.match(prev.strip())
        found.append(Snippet(path, start + 1, lang, "\n".join(body) + "\n",
                             marker.group(1) if marker else None))
    return found


def _console_script(snippet: Snippet) -> str:
    """Turn a ``$ command`` transcript into commands that check their output."""
    out: list[str] = []
    commands: list[tuple[str, list[str]]] = []
    for line in snippet.code.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif commands:
            commands[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"{snippet.where}: console block must start with '$ '")
    for n, (command, expected) in enumerate(commands):
        want = "\n".join(expected)
        out.append(
            f"__out=$(__rc_was $__rc; {command} 2>&1) && __rc=0 || __rc=$?\n"
            f"if [ \"$__out\" != {shlex.quote(want)} ]; then\n"
            f"  printf '%s\\n' {shlex.quote(f'{snippet.where}: command {n + 1} printed:')}"
            " \"$__out\" 'expected:' " + shlex.quote(want) + " >&2\n"
            "  exit 1\n"
            "fi\n"
        )
    return "__rc=0\n" + "".join(out)


def _clone(tmp_path: Path, data_dir: Path) -> Path:
    clone = tmp_path / "clone"
    clone.mkdir()
    for entry in REPO_ROOT.iterdir():
        if entry.name in {"vbs-data", ".git"}:
            continue
        (clone / entry.name).symlink_to(entry)
    (clone / "vbs-data").symlink_to(data_dir)
    return clone


def _runnable_files() -> list[Path]:
    return [p for p in DOC_FILES if any(s.not_run is None for s in snippets(p))]


def test_every_shell_snippet_is_run_or_says_why_not() -> None:
    every = [s for p in DOC_FILES for s in snippets(p)]
    assert any(s.path.name == "README.md" and s.not_run is None for s in every)
    skipped = [s for s in every if s.not_run is not None]
    for s in skipped:
        assert len(s.not_run or "") >= 10, f"{s.where}: not-run needs a real reason"
    assert len(skipped) <= MAX_NOT_RUN, [s.where for s in skipped]
    # An unlabeled block that looks like a shell session must say what it is.
    for path in DOC_FILES:
        text = path.read_text()
        for m in re.finditer(r"^```\n(\$ .*?)^```", text, re.M | re.S):
            raise AssertionError(f"{path.name}: label the '$ ...' transcript ```console: "
                                 f"{m.group(1)[:60]!r}")


def test_console_transcripts_are_checked() -> None:
    """The transcript converter really compares: a wrong expectation fails."""
    fake = Snippet(REPO_ROOT / "README.md", 1, "console", "$ echo hi\nho\n$ echo $?\n0\n",
                   None)
    script = "__rc_was() { return $1; }\n" + _console_script(fake)
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert result.returncode == 1 and "expected:" in result.stderr
    fixed = Snippet(fake.path, 1, "console", "$ echo hi\nhi\n$ false\n$ echo $?\n1\n", None)
    script = "__rc_was() { return $1; }\n" + _console_script(fixed)
    assert subprocess.run(["bash", "-c", script], capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("path", _runnable_files(), ids=lambda p: p.name)
def test_snippets_run_against_a_real_server(
    path: Path, tmp_path: Path,
    vbs_server_factory: Callable[..., RunningServer],  # noqa: F811
) -> None:
    server = vbs_server_factory(admin_password=None)
    clone = _clone(tmp_path, server.data_dir)
    address = server.base_url.removeprefix("http://")
    parts = ["set -euo pipefail", "PS4='+ $SECONDS '; set -x", "__rc_was() { return $1; }",
             f"export PATH={shlex.quote(str(REPO_ROOT / '.venv' / 'bin'))}:\"$PATH\""]
    ran = 0
    for snippet in snippets(path):
        if snippet.not_run is not None:
            continue
        code = snippet.code.replace(DEFAULT_ADDRESS, address)
        if snippet.lang in CONSOLE_LANGS:
            code = _console_script(Snippet(snippet.path, snippet.line, snippet.lang, code, None))
        parts.append(f"echo '--- {snippet.where}' >&2\n{code}")
        ran += 1
    assert ran
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VBS_", "OS_", "AWS_"))}
    env["TMPDIR"] = str(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT)])
    result = subprocess.run(
        ["bash", "-c", "\n".join(parts)], cwd=clone, env=env, capture_output=True, text=True,
        timeout=600, stdin=subprocess.DEVNULL,
    )
    (tmp_path / "snippets.log").write_text(result.stderr)  # the xtrace, with seconds
    assert result.returncode == 0, (
        f"{path.name}: snippets failed (exit {result.returncode})\n--- stdout\n{result.stdout}"
        f"\n--- stderr\n{result.stderr}\n--- server log\n{server.log()[-3000:]}"
    )
