"""The retriever a store serves with, following apply: built over the applied registry on
first use, when the store starts following it (see :mod:`featurestore.serving._versions`), and
rebuilt in one assignment whenever the watcher switches to a newly applied version."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

from featurestore._registry import Registry, RegistryState, build_state, fingerprints_of
from featurestore._repo import RepoContents
from featurestore.online._protocol import OnlineStore
from featurestore.online._published import DefinitionsCache
from featurestore.serving._retrieval import OnlineRetriever
from featurestore.serving._versions import (
    ReloadResult,
    ServedVersion,
    Signature,
    VersionWatcher,
    files_signature,
)

__all__ = ["ServedRetriever"]


class ServedRetriever:
    """One store's retriever of the served version, and the watcher that moves it along.

    ``code`` gives the store's current repo and the signature of the files it was read from;
    ``on_switch`` is told the repo and code signature of each version the watcher switches to
    (the store then trains and materializes with it too)."""

    def __init__(
        self,
        registry: Registry,
        online: Callable[[], OnlineStore],
        code: Callable[[], tuple[RepoContents, Signature]],
        on_switch: Callable[[RepoContents, Signature], None],
    ) -> None:
        self._registry = registry
        self._online = online
        self._code = code
        self._on_switch = on_switch
        self._lock = threading.Lock()
        self._retriever: OnlineRetriever | None = None
        self._watcher: VersionWatcher | None = None
        self._definitions: DefinitionsCache | None = None

    @property
    def following(self) -> bool:
        """Whether serving started (and with it, following apply)."""
        return self._watcher is not None

    @property
    def current(self) -> OnlineRetriever:
        """The served version's retriever (starts following apply on first use)."""
        retriever = self._retriever
        if retriever is None:
            with self._lock:
                if self._retriever is None:
                    self._start()
                retriever = self._retriever
            assert retriever is not None
        return retriever

    def _start(self) -> None:
        repo, seen = self._code()
        registry_seen = files_signature([self._registry.path])
        served = ServedVersion(repo, self._registry.require(), seen)
        self._retriever = self._build(served)
        watcher = VersionWatcher(
            self._registry,
            served,
            self._switch,
            repo.config.serving.reload_interval_seconds,
            registry_seen=registry_seen,
        )
        if watcher.problem is not None:  # the files may hold the applied code
            watcher.check(force=True)
        self._watcher = watcher
        watcher.start()

    def _build(self, served: ServedVersion) -> OnlineRetriever:
        if self._definitions is None:
            self._definitions = DefinitionsCache(self._online())
        code = build_state(served.repo, {})
        return OnlineRetriever(
            served.repo,
            self._online(),
            served.applied,
            fingerprints=partial(fingerprints_of, applied=served.applied, code=code),
            fallback_to_defaults=served.repo.config.online_store.fallback == "defaults",
            definitions=self._definitions,
        )

    def _switch(self, served: ServedVersion) -> None:
        """Serve ``served`` from now on; requests already running finish on their version."""
        self._on_switch(served.repo, served.code_seen)
        self._retriever = self._build(served)

    def adopt(self, served: ServedVersion) -> None:
        """Serve ``served`` at once (this process applied it)."""
        assert self._watcher is not None
        self._watcher.adopt(served)

    def reload(self) -> ReloadResult:
        """Check now for a newly applied registry, and serve it if the code on disk matches."""
        self.current  # noqa: B018 - starts following apply
        assert self._watcher is not None
        return self._watcher.check(force=True)

    @property
    def problem(self) -> str | None:
        """Why the served version is not the applied code on disk, or None."""
        return self._watcher.problem if self._watcher is not None else None

    @property
    def applied(self) -> RegistryState | None:
        """The registry state being served, once serving started."""
        return self._watcher.served.applied if self._watcher is not None else None

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
