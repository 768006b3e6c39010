"""The documentation runs: every Python block of README.md and docs/*.md, and every shell
block of docs/*.md, is executed (as keras-hub runs its docstring examples), so the docs
cannot drift from the code.

The blocks of one file run in order, in one fresh Python process (Python blocks share one
namespace) or one bash process per block, with the repository as working directory and
`python` meaning this interpreter. A shell block is skipped only when the line before it is
an HTML comment `<!-- not run: <reason> -->`; README's are the two setup commands, which CI
itself runs. Different files run two at a time (their examples use their own directories):
most of their time is process start-up, which overlaps well on two cores.
"""

import concurrent.futures
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

DOCS = [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^\n`]*)\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
                   re.M | re.S)
SKIP = re.compile(r"<!--\s*not run:\s*(?P<reason>[^>]+?)\s*-->\s*$")


def blocks(path):
    """[(language, code, line number, skip reason or None)] of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        code = "\n".join(row[len(match.group("indent")):]
                         for row in match.group("code").splitlines())
        found.append((match.group("info").strip().split(" ")[0], code, line,
                      skip.group("reason") if skip else None))
    return found


def run_python(path, tmp_path):
    script = ["import sys, traceback", "namespace = {'__name__': '__main__'}"]
    for language, code, line, _ in blocks(path):
        if language == "python":
            script.append(f"print('--- {path.name}:{line}', flush=True)")
            script.append(f"exec(compile({code!r}, '{path.name}:{line}', 'exec'), namespace)")
    if len(script) == 2:
        return None
    runner = tmp_path / "blocks.py"
    runner.write_text("\n".join(script) + "\n")
    return subprocess.run([sys.executable, str(runner)], cwd=REPO, capture_output=True,
                          text=True, timeout=1200, env=env(tmp_path))


def env(tmp_path):
    """`python` is this interpreter; the repository is importable."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "python"
    if not wrapper.exists():  # not a symlink: through one, Python would not find its venv
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        wrapper.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}


def run_shell(path, tmp_path):
    """Runs the shell blocks of `path` in order, up to the first failure.

    Returns:
        [(line number, code, completed process)] of the blocks run.
    """
    runs = []
    for language, code, line, skip in blocks(path):
        if language in ("bash", "sh", "shell") and not skip:
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=REPO,
                                    capture_output=True, text=True, timeout=1200,
                                    env=env(tmp_path))
            runs.append((line, code, result))
            if result.returncode:
                break
    return runs


def run_document(path, tmp_path):
    """Its Python blocks, then (but for README) its shell blocks."""
    tmp_path.mkdir(parents=True)
    shell = [] if path.name == "README.md" else run_shell(path, tmp_path)
    return {"python": run_python(path, tmp_path), "shell": shell}


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    """{path: future of `run_document`}, all submitted at once, run two at a time."""
    root = tmp_path_factory.mktemp("docs")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        yield {path: pool.submit(run_document, path, root / path.stem) for path in DOCS}


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_python_blocks_run(path, documents):
    result = documents[path].result()["python"]
    if result is None:
        pytest.skip(f"{path.name} has no Python block")
    assert result.returncode == 0, (
        f"{path.name}: a Python block failed; the last block started is the last "
        f"'---' line:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")


@pytest.mark.parametrize("path", [p for p in DOCS if p.name != "README.md"],
                         ids=lambda p: p.name)
def test_shell_blocks_run(path, documents):
    runs = documents[path].result()["shell"]
    if not runs:
        pytest.skip(f"{path.name} has no shell block to run")
    for line, code, result in runs:
        assert result.returncode == 0, (f"{path.name}:{line} failed:\n{code}\n"
                                        f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}")


def test_block_parser(tmp_path):
    doc = tmp_path / "d.md"
    doc.write_text("text\n```python\nx = 1\n```\n<!-- not run: needs a TPU -->\n```bash\n"
                   "exit 1\n```\n  ```python\n  y = 2\n  ```\n")
    assert blocks(doc) == [("python", "x = 1", 2, None), ("bash", "exit 1", 6, "needs a TPU"),
                           ("python", "y = 2", 9, None)]
