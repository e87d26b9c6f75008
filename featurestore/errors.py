"""Every error featurestore raises, rooted at :class:`FeatureStoreError`.

Each message names the object, the field, what was expected and what was found, and
where it helps, how to fix it. ``transient`` tells a caller whether retrying may help.

    FeatureStoreError
    ├── DefinitionError          a declaration is invalid (also a ValueError)
    ├── RepoError                no featurestore.yaml, a module fails to import, duplicate names
    │   └── ConfigError          featurestore.yaml is malformed
    ├── RegistryError            nothing applied yet, or the registry file is unreadable
    ├── ApplyError               definitions do not fit their sources; lists every problem
    ├── FeatureReferenceError    an unknown or ambiguous view, feature or service
    ├── SourceError              a source cannot be read
    │   ├── SourceNotFoundError  the source path matches no file
    │   ├── SchemaMismatchError  a column is missing or changed type
    │   └── PushError            pushed events cannot be appended to the source's files
    ├── SpineError               the entity spine lacks a key or timestamp, or has bad types
    ├── TransformError           a feature expression or on-demand function misbehaved
    ├── OnlineRequestError       an online request lacks a key, has a wrong type or length
    ├── MaterializationGuardError  a batch failed the publish guard; ``report`` says why
    ├── ReportError              a drift or skew report was asked for with bad arguments
    └── OnlineStoreError         the online store failed a read or write
        └── OnlineStoreUnavailableError   unreachable or timed out (transient)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApplyError",
    "ConfigError",
    "DefinitionError",
    "FeatureReferenceError",
    "FeatureStoreError",
    "MaterializationGuardError",
    "OnlineRequestError",
    "OnlineStoreError",
    "OnlineStoreUnavailableError",
    "PushError",
    "RegistryError",
    "RepoError",
    "ReportError",
    "SchemaMismatchError",
    "SourceError",
    "SourceNotFoundError",
    "SpineError",
    "TransformError",
]


class FeatureStoreError(Exception):
    """Root of every featurestore error."""

    transient: bool = False


class DefinitionError(FeatureStoreError, ValueError):
    """A feature definition is invalid; raised at declaration or apply time."""


class RepoError(FeatureStoreError):
    """The feature repo cannot be loaded."""


class ConfigError(RepoError):
    """featurestore.yaml is missing a field or has an invalid value."""


class RegistryError(FeatureStoreError):
    """The registry is missing (nothing applied yet) or unreadable."""


class ApplyError(FeatureStoreError):
    """Definitions do not fit their sources; ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"apply found {len(problems)} problem(s); nothing was written to the registry:\n{lines}"
        )


class FeatureReferenceError(FeatureStoreError, KeyError):
    """A requested view, feature or service does not exist or is ambiguous."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class SourceError(FeatureStoreError):
    """A data source cannot be read."""


class SourceNotFoundError(SourceError):
    """A source's path matches no file."""


class SchemaMismatchError(SourceError):
    """A source column is missing or changed to an incompatible type."""


class PushError(SourceError):
    """Pushed events cannot be appended to the source's files (a single file, a CSV, a glob
    whose files a new name cannot match); the message names the way out."""


class SpineError(FeatureStoreError):
    """The entity spine (the rows to build a training set for) is unusable."""


class TransformError(FeatureStoreError):
    """A feature expression or on-demand function failed or returned the wrong shape."""


class OnlineStoreError(FeatureStoreError):
    """The online store failed a read or a write."""


class OnlineStoreUnavailableError(OnlineStoreError):
    """The online store could not be reached within the configured timeout."""

    transient = True


class OnlineRequestError(FeatureStoreError, ValueError):
    """An online request is malformed: a missing join key, a wrong type or unequal lengths."""


class MaterializationGuardError(FeatureStoreError):
    """A batch failed the guard and was not published; ``report`` holds every check."""

    def __init__(self, report: Any) -> None:
        self.report = report
        super().__init__(
            f"refused to publish a batch for view {report.view!r}; the previously published "
            f"values stay online. Pass force=True (--force) to publish anyway.\n{report.summary()}"
        )


class ReportError(FeatureStoreError, ValueError):
    """A drift or skew report cannot be built from the arguments or data given."""
