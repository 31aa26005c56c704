"""Nothing in the suite can hang it: every test has a time bound (pytest-timeout, with the stacks of
every thread printed when it is reached), and every wait in the tests, their fixtures and the local
stack says how long it may take (docs/testing.md)."""

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Where a wait without a bound could hang `make test`: the tests and their support, and the local
# stack the end-to-end tests start.
SCANNED = (REPO / "tests", REPO / "layers" / "shared" / "straitruns" / "local")
# A call of one of these methods blocks until something else happens: it must name its bound.
# (`get` with no argument is a queue's; a dict's `get` always names a key.)
BLOCKING = {"wait", "join", "get", "acquire", "communicate", "result"}
TIMEOUT_KEYWORDS = {"timeout", "timeout_secs", "WaitTimeSeconds"}


@dataclass(frozen=True)
class Unbounded:
    path: str
    line: int
    call: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.call}"


def _with_parents(tree: ast.AST) -> ast.AST:
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            child.parent = parent  # type: ignore[attr-defined]
    return tree


def _scan(path: Path) -> list[Unbounded]:
    tree = _with_parents(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    found: list[Unbounded] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        name = node.func.attr
        named = {keyword.arg for keyword in node.keywords}
        call = Unbounded(str(path), node.lineno, ast.unparse(node))
        if name in BLOCKING and not node.args and not named & TIMEOUT_KEYWORDS:
            if not isinstance(node.parent, ast.Await):  # type: ignore[attr-defined]
                found.append(call)
        elif (name == "receive_message" and "WaitTimeSeconds" not in named) or (
            ast.unparse(node.func) == "subprocess.run" and "timeout" not in named
        ):
            found.append(call)
    return found


def test_the_scan_finds_each_kind_of_unbounded_wait(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import subprocess, threading, queue\n"
        "threading.Event().wait()\n"
        "threading.Event().wait(5)\n"
        "threading.Thread(target=print).join()\n"
        "queue.Queue().get()\n"
        "queue.Queue().get(timeout=1)\n"
        "sqs.receive_message(QueueUrl=url)\n"
        "sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)\n"
        "subprocess.run(['true'])\n"
        "subprocess.run(['true'], timeout=5)\n"
        "{}.get('key')\n",
        encoding="utf-8",
    )
    found = [item.line for item in _scan(sample)]

    assert found == [2, 4, 5, 7, 9]


def test_every_wait_in_the_tests_and_the_local_stack_has_a_bound() -> None:
    files = [path for root in SCANNED for path in sorted(root.rglob("*.py"))]
    assert len(files) > 50, "the scan found the tests"

    unbounded = [str(call).removeprefix(f"{REPO}/") for path in files for call in _scan(path)]

    assert unbounded == [], "waits without a bound:\n" + "\n".join(unbounded)


def test_a_test_that_waits_forever_fails_by_its_timeout_and_shows_where_it_waited(tmp_path: Path) -> None:
    # Given a test that waits for an event nobody sets (the project's pytest settings, a 3 s bound)
    (tmp_path / "test_forever.py").write_text(
        "import threading\n\n\n"
        "def test_waits_forever():\n"
        "    never = threading.Event()\n"
        "    never.wait()  # the waiting line\n",
        encoding="utf-8",
    )

    # When pytest runs it
    command = [sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"), "--rootdir", str(tmp_path)]
    command += ["-p", "no:cacheprovider", "-p", "no:xdist", "-o", "timeout=3", "test_forever.py"]
    result = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    # Then it failed by its timeout, and the output shows the stack of the waiting thread
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Timeout" in output, output
    assert "never.wait()  # the waiting line" in output, output
