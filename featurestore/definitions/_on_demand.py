"""On-demand feature views: a Python function of a Polars frame, run at training and at serving.

The decorator leaves the function callable: ``txn_risk(df)`` still runs the user's code.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import polars as pl
from pydantic import Field, field_validator, model_validator

from featurestore.definitions._base import Definition, Identifier, did_you_mean, split_ref
from featurestore.definitions._dtypes import DTypeLike
from featurestore.definitions._feature import Feature
from featurestore.definitions._sources import RequestSource
from featurestore.definitions._view import FeatureView
from featurestore.errors import DefinitionError, FeatureReferenceError

# The function of an on-demand view: the frame of its inputs in, its output columns out (as a
# frame, or expressions over the inputs, named by alias or by the dict's keys).
UdfResult: TypeAlias = pl.DataFrame | pl.LazyFrame | pl.Expr | list[pl.Expr] | dict[str, pl.Expr]
Udf: TypeAlias = Callable[[pl.DataFrame], UdfResult]
# In row mode: one row's inputs in, its outputs out, as dicts keyed by column name.
RowUdf: TypeAlias = Callable[[dict[str, Any]], Mapping[str, Any]]
Source: TypeAlias = RequestSource | FeatureView | str


class OnDemandFeatureView(Definition):
    """Features computed from request columns and other views' features by ``udf``.

    ``sources`` lists request sources, whole feature views (every feature of the view is an
    input), and ``"view:feature"`` references (only that feature is an input, so editing the
    view's other features leaves this view's fingerprints alone). Each input is a column of
    the frame the function gets, named by the feature's name.
    """

    name: Identifier
    sources: list[RequestSource | FeatureView | str]
    features: list[Feature]
    udf: Callable[..., Any]
    mode: Literal["frame", "rows"] = "frame"
    owner: str | None = None
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)

    if TYPE_CHECKING:

        def __init__(
            self,
            name: str,
            *,
            sources: Sequence[Source],
            features: Sequence[Feature],
            udf: Udf | RowUdf,
            mode: Literal["frame", "rows"] = "frame",
            owner: str | None = None,
            description: str = "",
            tags: Mapping[str, str] = ...,
        ) -> None: ...

    @field_validator("sources")
    @classmethod
    def _refs(
        cls, v: list[RequestSource | FeatureView | str]
    ) -> list[RequestSource | FeatureView | str]:
        for src in v:
            if isinstance(src, str):
                split_ref(src)
        return v

    @model_validator(mode="after")
    def _shape(self) -> OnDemandFeatureView:
        if not self.sources:
            raise ValueError(
                "sources must list at least one RequestSource, FeatureView or 'view:feature'"
            )
        if not self.features:
            raise ValueError("schema must declare at least one output column")
        seen: dict[str, str] = {}
        for src in self.sources:
            for col in self._columns_of(src):
                name = src if isinstance(src, str) else src.name
                if col in seen:
                    raise ValueError(
                        f"input column {col!r} comes from both {seen[col]!r} and {name!r}; "
                        "rename one of them"
                    )
                seen[col] = name
        label = getattr(self.udf, "__name__", None) or repr(self.udf)
        try:
            signature = inspect.signature(self.udf)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"cannot read the signature of function {label} ({exc}); pass a Python "
                "function of one Polars DataFrame"
            ) from None
        params = [
            p
            for p in signature.parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if len(params) != 1:
            takes = "a dict of one row's inputs" if self.mode == "rows" else "a Polars DataFrame"
            raise ValueError(
                f"function {label} must take exactly one argument ({takes}), found {len(params)}"
            )
        return self

    @staticmethod
    def _columns_of(src: RequestSource | FeatureView | str) -> list[str]:
        if isinstance(src, str):
            return [split_ref(src)[1]]
        return list(src.fields) if isinstance(src, RequestSource) else src.feature_names

    @property
    def request_sources(self) -> list[RequestSource]:
        return [s for s in self.sources if isinstance(s, RequestSource)]

    @property
    def request_columns(self) -> dict[str, Any]:
        """Request columns the function reads, with their dtypes."""
        return {c: d for r in self.request_sources for c, d in r.fields.items()}

    def input_refs(self, views: Mapping[str, FeatureView]) -> list[tuple[str, str]]:
        """The (view, feature) of every feature input, in declaration order: each feature of a
        view source, or the one a ``"view:feature"`` source names, resolved against ``views``
        (the repo's views by name)."""
        refs: list[tuple[str, str]] = []
        for src in self.sources:
            if isinstance(src, FeatureView):
                refs += [(src.name, f) for f in src.feature_names]
            elif isinstance(src, str):
                view_name, feature = split_ref(src)
                view = views.get(view_name)
                if view is None:
                    hint = did_you_mean(view_name, sorted(views))
                    raise FeatureReferenceError(
                        f"on-demand view {self.name!r}: source {src!r} names view "
                        f"{view_name!r}, which is not a feature view of the repo.{hint} "
                        f"Known views: {', '.join(sorted(views)) or 'none'}."
                    )
                view.feature(feature)  # raises with the view's known features
                refs.append((view_name, feature))
        return refs

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        names = self.feature_names
        hint = did_you_mean(name, names, f"{self.name}:")
        raise FeatureReferenceError(
            f"Feature '{self.name}:{name}' is not defined.{hint} "
            f"Known features of view '{self.name}': {', '.join(names)}."
        )

    def __call__(self, inputs: Any) -> Any:
        """Run the user's function unchanged (on a frame, or on one row's dict in row mode)."""
        return self.udf(inputs)


def on_demand_feature_view(
    *,
    sources: Sequence[Source],
    schema: Mapping[str, DTypeLike] | list[Feature],
    name: str | None = None,
    mode: Literal["frame", "rows"] = "frame",
    owner: str | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Callable[[Udf | RowUdf], OnDemandFeatureView]:
    """Declare an on-demand view over ``sources`` (request sources, feature views and
    ``"view:feature"`` references); ``schema`` maps output names to dtypes (or lists
    Features). ``mode="rows"``: the function takes one row's inputs as a dict and returns a
    dict of its outputs (no frame is built at request time; see :mod:`featurestore._row_mode`)."""

    def wrap(fn: Udf | RowUdf) -> OnDemandFeatureView:
        view_name = name if name is not None else getattr(fn, "__name__", None)
        if view_name is None:
            raise DefinitionError(
                f"on_demand_feature_view: {fn!r:.80} has no __name__ to name the view after; "
                "pass name='...'"
            )
        if not isinstance(schema, Mapping | list):
            raise DefinitionError(
                f"OnDemandFeatureView {view_name!r}: schema must map output names to dtypes "
                f"or list Features, found {type(schema).__name__}"
            )
        try:
            features = (
                list(schema)
                if isinstance(schema, list)
                else [Feature(col, dtype) for col, dtype in schema.items()]
            )
        except DefinitionError as exc:
            raise DefinitionError(f"OnDemandFeatureView {view_name!r}: schema: {exc}") from None
        return OnDemandFeatureView(
            name=view_name,
            sources=sources,
            features=features,
            udf=fn,
            mode=mode,
            owner=owner,
            description=description if description is not None else inspect.getdoc(fn) or "",
            tags=tags if tags is not None else {},
        )

    return wrap
