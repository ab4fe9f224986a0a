"""House rules a test checks on cgrpy/ and services/: no function longer than 80 lines (small
functions, pure logic apart from thin handlers) and comments that point only inside the
repository. Generated code is not ours to shape: the protobuf modules live outside these trees
(cgrates/v1) and Alembic's revision files are excluded."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.suite import REPO

MAX_LINES = 80
TREES = ("cgrpy", "services")
GENERATED = ("cgrpy/storage/migrations/versions",)


def long_functions(root: Path) -> list[str]:
    """``path:line name (N lines)`` of every function or method longer than MAX_LINES, counted
    from its ``def`` line to its last line (decorators not counted)."""
    out: list[str] = []
    for tree in TREES:
        for path in sorted((root / tree).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel.startswith(GENERATED):
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=rel)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    n = (node.end_lineno or node.lineno) - node.lineno + 1
                    if n > MAX_LINES:
                        out.append(f"{rel}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_function_over_80_lines() -> None:
    assert long_functions(REPO) == []


def test_the_check_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "services").mkdir()
    (tmp_path / "cgrpy").mkdir()
    (tmp_path / "services" / "long.py").write_text(f"def too_long():\n{body}\n")
    (tmp_path / "cgrpy" / "short.py").write_text("def fine():\n    return 1\n")
    assert long_functions(tmp_path) == [f"services/long.py:1 too_long ({MAX_LINES + 1} lines)"]


# Comments and docstrings explain themselves inside the repository: no pointers to spec sections
# outside it ("§2.6", "../shared/spec") and no issue numbers; the rules live in docs/.
OUTSIDE = re.compile(r"§|shared/spec|\b[Ii]ssue\s*#?\d+|\(#\d+\)")


def outside_references(root: Path) -> list[str]:
    out: list[str] = []
    for tree in (*TREES, "protos"):
        for path in sorted((root / tree).rglob("*")):
            if path.suffix not in (".py", ".proto"):
                continue
            rel = path.relative_to(root).as_posix()
            for n, line in enumerate(path.read_text().splitlines(), start=1):
                if OUTSIDE.search(line):
                    out.append(f"{rel}:{n}: {line.strip()}")
    return out


def test_comments_point_only_inside_the_repository() -> None:
    assert outside_references(REPO) == []
