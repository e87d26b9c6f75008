"""Load a feature repo: read featurestore.yaml and collect the definitions its modules make.

Every definition module of the repo (see :mod:`featurestore._repo_files`: ``*.py`` files that
import featurestore, outside hidden, private and data folders and ``.featurestoreignore``) is
imported fresh, with the repo on ``sys.path`` so modules may import each other. A definition is
collected once however many modules import it; two different definitions with one name fail.
"""

from __future__ import annotations

import importlib
import linecache
import os
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featurestore._config import CONFIG_FILE, RepoConfig, load_config
from featurestore._repo_files import definition_files
from featurestore.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    FileSource,
    OnDemandFeatureView,
    RequestSource,
    TableSource,
)
from featurestore.definitions._base import Definition, did_you_mean
from featurestore.definitions._fingerprint import function_definition
from featurestore.errors import FeatureReferenceError, RepoError

DEFAULT_REPO = "feature_definitions"


@dataclass
class RepoContents:
    """What a feature repo declares, by kind and name."""

    root: Path
    config: RepoConfig
    entities: dict[str, Entity] = field(default_factory=dict)
    sources: dict[str, FileSource | TableSource | RequestSource] = field(default_factory=dict)
    views: dict[str, FeatureView] = field(default_factory=dict)
    on_demand_views: dict[str, OnDemandFeatureView] = field(default_factory=dict)
    services: dict[str, FeatureService] = field(default_factory=dict)
    origins: dict[tuple[str, str], str] = field(default_factory=dict)
    # each on-demand function's definition (see fingerprint.function_definition), taken right
    # after its module was imported: the source text then is the text the code came from
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return (self.root / self.config.data_dir).resolve()

    @property
    def serving_log_dir(self) -> Path:
        return self.data_dir / self.config.serving_log.path

    def any_view(self, name: str) -> FeatureView | OnDemandFeatureView:
        """A batch or on-demand view by name; the error lists the known ones."""
        view = self.views.get(name) or self.on_demand_views.get(name)
        if view is None:
            known = sorted([*self.views, *self.on_demand_views])
            raise FeatureReferenceError(
                f"Feature view '{name}' is not defined.{did_you_mean(name, known)} "
                f"Known views: {', '.join(known) or 'none'}."
            )
        return view

    def service(self, name: str) -> FeatureService:
        if name not in self.services:
            known = sorted(self.services)
            raise FeatureReferenceError(
                f"Feature service '{name}' is not defined.{did_you_mean(name, known)} "
                f"Known services: {', '.join(known) or 'none'}."
            )
        return self.services[name]


def find_repo(path: str | Path | None = None) -> Path:
    """The repo directory: ``path``; else the current directory, ./feature_definitions, or the
    nearest parent directory that holds a featurestore.yaml (a command run in a subfolder)."""
    if path is not None:
        root = Path(path)
        if root.is_file() and root.name == CONFIG_FILE:
            root = root.parent
        if not (root / CONFIG_FILE).is_file():
            raise RepoError(
                f"{root} is not a feature repo: it has no {CONFIG_FILE}. "
                "Create one with 'featurestore init DIR'."
            )
        return root.resolve()
    here = Path.cwd()
    for candidate in (here, here / DEFAULT_REPO, *here.parents):
        if (candidate / CONFIG_FILE).is_file():
            return candidate.resolve()
    raise RepoError(
        f"no {CONFIG_FILE} in the current directory, its parents or ./{DEFAULT_REPO}; "
        "pass --repo DIR or create a repo with 'featurestore init DIR'"
    )


def _module_name(root: Path, path: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts)


def _forget_modules(root: Path) -> None:
    prefix = os.path.join(str(root), "")
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        # the repo's modules were imported from ``root`` itself (on sys.path as given), so a
        # prefix test finds them without resolving every module's path
        if file and file.startswith(prefix):
            del sys.modules[name]


# sys.modules, sys.path and the bytecode settings are process-wide: two threads loading repos at
# once would pop each other's half-imported modules, so loads take turns
_IMPORT_LOCK = threading.RLock()


def _user_line(exc: BaseException, root: Path) -> str:
    """Where the failure is in the repo's own code (the deepest frame in a file of the repo,
    e.g. the declaration a definition refused), else where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    prefix = os.path.join(str(root), "")
    mine = [f for f in frames if f.filename.startswith(prefix)]
    frame = (mine or frames)[-1]
    name = Path(frame.filename)
    shown = name.relative_to(root) if mine else name.name
    return f"{shown}:{frame.lineno}"


def _import_modules(root: Path, files: list[Path]) -> dict[str, Any]:
    with _IMPORT_LOCK:
        return _import_modules_locked(root, files)


def _import_modules_locked(root: Path, files: list[Path]) -> dict[str, Any]:
    names = [_module_name(root, p) for p in files]
    _forget_modules(root)
    for name in names:  # a stale module of the same name from another repo
        sys.modules.pop(name, None)
    sys.path.insert(0, str(root))
    # Compile from source every time: a cached .pyc is keyed on whole-second mtime and size,
    # so an edit within the same second could otherwise load the old definitions.
    saved = sys.dont_write_bytecode, sys.pycache_prefix
    scratch = tempfile.TemporaryDirectory(prefix="featurestore-pycache-")
    sys.dont_write_bytecode, sys.pycache_prefix = True, scratch.name
    importlib.invalidate_caches()
    linecache.checkcache()  # function sources are fingerprinted via inspect.getsource
    modules = {}
    try:
        for path, name in zip(files, names, strict=True):
            try:
                modules[str(path.relative_to(root))] = importlib.import_module(name)
            except Exception as exc:
                raise RepoError(
                    f"importing {path.relative_to(root)} failed: {type(exc).__name__}: {exc} "
                    f"(at {_user_line(exc, root)})"
                ) from exc
    finally:
        sys.path.remove(str(root))
        sys.dont_write_bytecode, sys.pycache_prefix = saved
        scratch.cleanup()
        _forget_modules(root)
    return modules


_Named = (
    Entity
    | FileSource
    | TableSource
    | RequestSource
    | FeatureView
    | OnDemandFeatureView
    | FeatureService
)
_KINDS: list[tuple[type[_Named], str]] = [
    (Entity, "entities"),
    (FileSource, "sources"),
    (TableSource, "sources"),
    (RequestSource, "sources"),
    (FeatureView, "views"),
    (OnDemandFeatureView, "on_demand_views"),
    (FeatureService, "services"),
]


def _origin(repo: RepoContents, obj: Any, module_file: str) -> str:
    """Where ``obj`` was created, relative to the repo; else the module it was found in."""
    created = obj.origin if isinstance(obj, Definition) else None
    if created and Path(created).resolve().is_relative_to(repo.root):
        return str(Path(created).resolve().relative_to(repo.root))
    return module_file


def _add(repo: RepoContents, obj: Any, found_in: str) -> None:
    origin = _origin(repo, obj, found_in)
    for kind, attr in _KINDS:
        if isinstance(obj, kind):
            table: dict[str, Any] = getattr(repo, attr)
            existing = table.get(obj.name)
            if existing is None:
                table[obj.name] = obj
                repo.origins[(attr, obj.name)] = origin
            elif existing is not obj and existing != obj:
                first = repo.origins[(attr, obj.name)]
                raise RepoError(
                    f"two different {kind.__name__} definitions are named {obj.name!r} "
                    f"(in {first} and {origin}); give them distinct names"
                )
            break
    if isinstance(obj, FeatureView):
        for entity in obj.entities:
            _add(repo, entity, origin)
        _add(repo, obj.source, origin)
    elif isinstance(obj, OnDemandFeatureView):
        for src in obj.sources:
            _add(repo, src, origin)


def load_repo(path: str | Path | None = None) -> RepoContents:
    """Read the config and import the modules of the repo at ``path`` (see :func:`find_repo`)."""
    root = find_repo(path)
    config = load_config(root)
    repo = RepoContents(root=root, config=config)
    modules = _import_modules(root, definition_files(root, repo.data_dir))
    for origin, module in modules.items():
        for value in vars(module).values():
            _add(repo, value, origin)
    clash = sorted(set(repo.views) & set(repo.on_demand_views))
    if clash:
        raise RepoError(f"feature views and on-demand views share the names {clash}")
    repo.functions = {
        name: function_definition(odfv.udf) for name, odfv in repo.on_demand_views.items()
    }
    return repo


def repo_files(root: Path) -> list[Path]:
    """The ``*.py`` files a repo at ``root`` is loaded from (without loading them)."""
    config = load_config(root)
    return definition_files(root, (root / config.data_dir).resolve())
