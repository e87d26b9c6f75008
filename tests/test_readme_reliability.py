"""The README's reliability table names tests that exist: a renamed or moved test breaks it."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def table_rows() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Reliability: what survives what", 1)[1].split("\n## ", 1)[0]
    return [
        line
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| what") and "---" not in line
    ]


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    }


def test_every_row_names_tests_that_exist() -> None:
    rows = table_rows()
    assert len(rows) >= 10
    for row in rows:
        references = re.findall(r"`([^`]+)`", row.rstrip(" |").rsplit("|", 1)[1])
        assert any(reference.startswith("tests/") for reference in references), row
        path: Path | None = None
        for reference in references:
            if reference.startswith("tests/"):
                file, _, name = reference.partition("::")
                path = ROOT / file
                assert path.exists(), f"{file} named in the README does not exist"
            elif reference.startswith("::") or reference.startswith("test_"):
                name = reference.removeprefix("::")
            else:
                continue
            if name:
                assert path is not None and path.is_file(), row
                assert name in defined_tests(path), f"{path.name} has no {name}"
