"""Which files of a feature repo are its definition modules, without importing any of them.

A ``*.py`` file under the repo is loaded unless:

- it sits in a hidden or private folder (``.x/``, ``_x/``), in a ``data`` or ``tests`` folder
  or in the repo's data directory, or is private itself (``_x.py``);
- a pattern of the repo's ``.featurestoreignore`` matches it: one shell glob per line, matched
  against the path relative to the repo (a pattern without ``/`` against each file and folder
  name; a trailing ``/`` matches folders only), ``#`` starts a comment;
- it defines nothing: neither it nor a repo module it imports imports ``featurestore`` (so a
  data generator or a script beside the definitions is never run by a command).
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path, PurePosixPath

from featurestore.definitions._fingerprint import parse_python

__all__ = ["IGNORE_FILE", "definition_files"]

IGNORE_FILE = ".featurestoreignore"


def definition_files(root: Path, data_dir: Path) -> list[Path]:
    """The definition modules of the repo at ``root``, sorted."""
    patterns = _patterns(root / IGNORE_FILE)
    candidates = {}
    for path in sorted(root.rglob("*.py")):
        rel = PurePosixPath(path.relative_to(root).as_posix())
        if _excluded(rel, path, data_dir) or _ignored(rel, patterns):
            continue
        candidates[_module_name(rel)] = path
    imports = {name: _imported(path, name) for name, path in candidates.items()}
    defining = {n for n, names in imports.items() if any(_is_featurestore(i) for i in names)}
    grew = True
    while grew:  # a module that imports a defining repo module defines too
        more = {n for n, names in imports.items() if n not in defining and names & defining}
        defining |= more
        grew = bool(more)
    return [path for name, path in candidates.items() if name in defining]


def _excluded(rel: PurePosixPath, path: Path, data_dir: Path) -> bool:
    folders = rel.parts[:-1]
    return (
        any(p.startswith((".", "_")) for p in folders)
        or rel.name.startswith("_")
        or data_dir in path.parents
        or any(p in ("data", "tests") for p in folders)
    )


def _patterns(path: Path) -> list[str]:
    if not path.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line.lstrip("/") if line != "/" else line for line in lines if line]


def _ignored(rel: PurePosixPath, patterns: list[str]) -> bool:
    """Whether a pattern matches the file or one of its folders."""
    folders = [PurePosixPath(*rel.parts[: i + 1]) for i in range(len(rel.parts) - 1)]
    for pattern in patterns:
        folder_only = pattern.endswith("/")
        glob = pattern.rstrip("/")
        targets = folders if folder_only else [*folders, rel]
        for target in targets:
            text = target.name if "/" not in glob else target.as_posix()
            if fnmatch.fnmatchcase(text, glob):
                return True
    return False


def _module_name(rel: PurePosixPath) -> str:
    parts = rel.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path, module: str) -> set[str]:
    """Every module name ``path`` imports, with each of its parents (``a.b`` gives ``a``)."""
    try:
        tree = parse_python(path.read_bytes(), str(path))
    except (SyntaxError, ValueError):
        return {"featurestore"}  # load it, so that the import reports the error where it is
    package = module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: max(0, len(package.split(".")) - node.level + 1)]
                base = ".".join(p for p in [*up, base] if p)
            found = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        for name in found:
            parts = name.split(".")
            names.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return names


def _is_featurestore(name: str) -> bool:
    return name == "featurestore" or name.startswith("featurestore.")
