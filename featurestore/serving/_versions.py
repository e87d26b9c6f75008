"""How a long-lived process follows apply.

A serving process holds one *served version*: the repo's code and the registry state it was
applied as, which agree. A watcher checks, every ``serving.reload_interval_seconds`` (and when
asked), whether the registry file or the repo's code changed; if so it loads the code from
disk and compares it with the applied registry. When they match, the process switches to the
new version in one assignment: a request already running keeps the version it started with,
and every response carries the fingerprints of the version that computed it. When they do not
(the code was edited but not applied, or applied elsewhere but not deployed here), the process
keeps serving the last consistent version and reports why as its readiness problem.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from featurestore._registry import Registry, RegistryState, build_state
from featurestore._repo import RepoContents, load_repo, repo_files
from featurestore._repo_files import IGNORE_FILE
from featurestore.errors import FeatureStoreError

__all__ = [
    "ReloadResult",
    "ServedVersion",
    "Signature",
    "VersionWatcher",
    "code_differences",
    "code_signature",
    "files_signature",
]

log = logging.getLogger(__name__)

_APPLY_OR_RESTORE = (
    "run 'featurestore apply' to apply the code on disk, or restore the applied code"
)


Signature = tuple[object, ...]


@dataclass(frozen=True)
class ServedVersion:
    """The definitions a process serves: the repo's code, its applied registry state, and the
    signature of the code files when the code was read from them."""

    repo: RepoContents
    applied: RegistryState
    code_seen: Signature


class ReloadResult(BaseModel):
    """The outcome of one check for a new applied registry.

    ``version`` and ``applied_at`` describe the version served after the check; ``switched``
    says whether the check moved to it; ``problem`` is set while the code on disk and the
    applied registry disagree (the process then serves its last consistent version).
    """

    version: int
    applied_at: dt.datetime
    switched: bool
    code_matches: bool
    problem: str | None = None


def code_differences(repo: RepoContents, applied: RegistryState) -> list[str]:
    """How the code of ``repo`` differs from ``applied``: features changed, added or removed,
    and feature services whose features differ. Empty when they agree."""
    current = build_state(repo, {})
    out = []
    for ref, record in current.features.items():
        old = applied.features.get(ref)
        if old is None:
            out.append(f"{ref} is not applied")
        elif old.fingerprint != record.fingerprint:
            out.append(f"{ref} changed (fingerprint {old.fingerprint} -> {record.fingerprint})")
    out += [f"{ref} was removed" for ref in applied.features if ref not in current.features]
    out += [
        f"feature service {name!r} differs"
        for name in sorted(set(current.services) | set(applied.services))
        if current.services.get(name) != applied.services.get(name)
    ]
    return out


def files_signature(paths: Iterable[Path]) -> Signature:
    """What an edit, a new file or a removed one changes: each file's size, time and inode."""
    out: list[object] = []
    for path in paths:
        try:
            st = path.stat()
        except FileNotFoundError:
            out.append((str(path), None))
            continue
        out.append((str(path), st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


def code_signature(root: Path) -> Signature:
    """The signature of the code files a repo at ``root`` is loaded from, and of the ignore
    file that chooses them (taken before they are read, so an edit made while they load is
    seen as a change at the next check)."""
    return files_signature([*repo_files(root), root / IGNORE_FILE])


class VersionWatcher:
    """Checks for a newly applied registry and switches the served version (see the module
    docstring). ``switch`` is called with each new version; :meth:`check` may run from any
    thread, :meth:`start` runs it every ``interval`` seconds in a daemon thread."""

    def __init__(
        self,
        registry: Registry,
        served: ServedVersion,
        switch: Callable[[ServedVersion], None],
        interval: float,
        registry_seen: Signature,
    ) -> None:
        """``registry_seen``: the signature of the registry file taken before ``served`` read
        its applied state."""
        self.registry = registry
        self.served = served
        self.switch = switch
        self.interval = interval
        self.problem: str | None = None
        self.checked_at: dt.datetime | None = None
        self._lock = threading.Lock()
        self._seen = (registry_seen, served.code_seen)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        differences = code_differences(served.repo, served.applied)
        self._consistent = not differences  # the served code is the applied code
        if differences:
            self.problem = self._mismatch(differences, served.applied)

    def _signature(self) -> tuple[Signature, Signature]:
        return files_signature([self.registry.path]), code_signature(self.served.repo.root)

    def _result(self, switched: bool) -> ReloadResult:
        return ReloadResult(
            version=self.served.applied.version,
            applied_at=self.served.applied.applied_at,
            switched=switched,
            code_matches=self.problem is None,
            problem=self.problem,
        )

    @staticmethod
    def _mismatch(differences: list[str], applied: RegistryState) -> str:
        shown = "; ".join(differences[:5]) + (
            f"; and {len(differences) - 5} more" if len(differences) > 5 else ""
        )
        return (
            f"the code on disk does not match the applied registry (version {applied.version}, "
            f"applied {applied.applied_at:%Y-%m-%d %H:%M:%S} UTC): {shown}; {_APPLY_OR_RESTORE}"
        )

    def check(self, force: bool = False) -> ReloadResult:
        """Look for a new applied registry or changed code now; switch when they match.
        Without ``force``, nothing is loaded unless a file changed since the last check."""
        with self._lock:
            self.checked_at = dt.datetime.now(dt.UTC)
            signature = self._signature()
            if signature == self._seen and not force:
                return self._result(False)
            self._seen = signature
            try:
                applied = self.registry.require()
                repo = load_repo(self.served.repo.root)
                differences = code_differences(repo, applied)
            except FeatureStoreError as exc:
                self.problem = (
                    f"cannot load the applied definitions: {exc}; still serving registry "
                    f"version {self.served.applied.version}"
                )
                log.warning("reload failed problem=%s", self.problem)
                return self._result(False)
            if differences:
                self.problem = self._mismatch(differences, applied) + (
                    f"; still serving registry version {self.served.applied.version}"
                )
                log.warning("reload refused problem=%s", self.problem)
                return self._result(False)
            self.problem = None
            if (
                self._consistent
                and applied.version == self.served.applied.version
                and applied.applied_at == self.served.applied.applied_at
            ):
                return self._result(False)
            self.served = ServedVersion(repo, applied, signature[1])
            self._consistent = True
            self.switch(self.served)
            log.info(
                "switched to registry version=%d applied_at=%s",
                applied.version,
                applied.applied_at.isoformat(),
            )
            return self._result(True)

    def adopt(self, served: ServedVersion) -> None:
        """Take a version this process made itself (its own apply) without loading it again."""
        with self._lock:
            self.served = served
            self.problem = None
            self._consistent = True
            self._seen = (files_signature([self.registry.path]), served.code_seen)
            self.switch(served)

    def start(self) -> None:
        if self._thread is not None or self.interval <= 0:
            return

        def run() -> None:
            while not self._stop.wait(self.interval):
                try:
                    self.check()
                except Exception:  # keep watching: a bad edit must not stop later reloads
                    log.exception("registry check failed")

        self._stop.clear()
        self._thread = threading.Thread(target=run, name="featurestore-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
