"""The library is typed for its users: the README's examples, the example repo and
tests/typing_usage.py pass mypy --strict and strict pyright against the installed package (as
a user's checker sees it, through its py.typed marker), and the package passes mypy --strict.

The three checks run at once, each in its own process with its own mypy cache (kept under
.mypy_cache between runs), to keep the wall time near that of the slowest."""

from __future__ import annotations

import ast
import inspect
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TypeAlias

import pytest

import featurestore.definitions as definitions
from featurestore.definitions._base import Definition

ROOT = Path(__file__).resolve().parents[1]
USER_CODE = [ROOT / "tests" / "typing_usage.py", ROOT / "feature_definitions"]
CACHE = ROOT / ".mypy_cache" / "test_typing"  # gitignored; kept between runs, as mypy's own
_FENCE = re.compile(r"^(\s*)```python\s*$")
_TIMEOUT = 300
Checks: TypeAlias = dict[str, tuple["subprocess.Popen[bytes]", Path]]  # name -> (process, log)


def readme_module(text: str) -> str:
    """Every python block of the README at its own line numbers, other lines blank: the
    examples read on from one block to the next, as a reader takes them, and an error's line
    number is the README's."""
    lines = text.splitlines()
    out = [""] * len(lines)
    at = 0
    while at < len(lines):
        fence = _FENCE.match(lines[at])
        at += 1
        if fence is None:
            continue
        indent = len(fence.group(1))
        while lines[at].strip() != "```":
            out[at] = lines[at][indent:]
            at += 1
    return "\n".join(out) + "\n"


def _start(args: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)


def _pyright_config(folder: Path) -> Path:
    """Strict pyright, as a careful user runs it; an ignore comment must suppress an error."""
    config = folder / "pyrightconfig.json"
    settings = {
        "typeCheckingMode": "strict",
        "pythonVersion": "3.11",
        "reportUnnecessaryTypeIgnoreComment": "error",
        "extraPaths": [str(ROOT / "feature_definitions")],  # its modules import each other
    }
    config.write_text(json.dumps(settings))
    return config


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Checks]:
    """The three checkers, started together."""
    pytest.importorskip("mypy")
    pytest.importorskip("pyright")
    user = tmp_path_factory.mktemp("user_code")  # outside the repo: featurestore as installed
    readme = user / "readme.py"
    readme.write_text(readme_module((ROOT / "README.md").read_text()))
    files = [str(readme), *map(str, USER_CODE)]
    mypy = [sys.executable, "-m", "mypy", "--strict", "--no-color-output", "--cache-dir"]
    pyright = [sys.executable, "-m", "pyright", "--pythonpath", sys.executable, "-p"]
    commands = {  # the user's code with no config of the repo's; the package with it
        "user code, mypy": ([*mypy, str(CACHE / "user_code"), "--config-file", "", *files], user),
        "user code, pyright": ([*pyright, str(_pyright_config(user)), *files], user),
        "package, mypy": ([*mypy, str(CACHE / "package"), "featurestore"], ROOT),
    }
    procs: Checks = {}
    for i, (name, (args, cwd)) in enumerate(commands.items()):
        log = user / f"{i}.log"
        procs[name] = (_start(args, cwd, log), log)
    yield procs
    for proc, _ in procs.values():
        if proc.poll() is None:
            proc.kill()


def _passes(checks: Checks, name: str) -> None:
    proc, log = checks[name]
    code = proc.wait(timeout=_TIMEOUT)
    output = log.read_text().replace(str(Path(log.parent, "readme.py")), "README.md")
    output = output.replace("readme.py:", "README.md:")
    print(output)
    assert code == 0, f"{name} found type errors:\n{output}"


def test_readme_examples_and_user_code_pass_mypy_strict(checks: Checks) -> None:
    _passes(checks, "user code, mypy")


def test_readme_examples_and_user_code_pass_strict_pyright(checks: Checks) -> None:
    _passes(checks, "user code, pyright")


def test_package_passes_mypy_strict(checks: Checks) -> None:
    _passes(checks, "package, mypy")


def test_readme_module_keeps_the_readme_line_numbers() -> None:
    text = "intro\n```python\nx = 1\n```\n- item:\n\n  ```python\n  y = x\n  ```\n"
    assert readme_module(text).splitlines() == ["", "", "x = 1", "", "", "", "", "y = x", ""]


PUBLIC_DEFINITIONS = [
    cls
    for name in definitions.__all__
    if isinstance(cls := getattr(definitions, name), type) and issubclass(cls, Definition)
]


def _typed_init(cls: type[Definition]) -> ast.arguments:
    """The parameters of the ``__init__`` the class declares for type checkers."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    found = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
    assert len(found) == 1, f"{cls.__name__} declares no typed __init__ under TYPE_CHECKING"
    return found[0].args


@pytest.mark.parametrize("cls", PUBLIC_DEFINITIONS, ids=lambda cls: cls.__name__)
def test_the_typed_constructor_names_every_field_positional_ones_in_order(
    cls: type[Definition],
) -> None:
    args = _typed_init(cls)
    positional = tuple(a.arg for a in args.args[1:])
    keyword = [a.arg for a in args.kwonlyargs]
    fields = {f.alias or name for name, f in cls.model_fields.items()}
    if cls is definitions.Count:  # counts events: takes no column, by position or keyword
        assert positional == ()
        fields.discard("column")
    else:
        assert positional == cls._positional
    assert not args.vararg and not args.kwarg
    assert sorted([*positional, *keyword]) == sorted(fields)
