"""Fingerprints: a short hash of everything that decides a feature's values.

Owner, description and tags are metadata and do not change a fingerprint; the source, keys,
ttl, expression or function body, dtype and validation rules do. An aggregation's fingerprint
covers its kind, column, window, dtype, source and keys, but not the view's ttl, which does
not apply to it. A function is hashed from its source with comments, docstrings and
decorators removed, so reformatting a comment does not look like a new feature version.
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import inspect
import json
import textwrap
from collections.abc import Callable
from typing import Any

from featurestore.definitions.aggregation import Aggregation
from featurestore.definitions.dtypes import dtype_name
from featurestore.definitions.feature import Feature
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.definitions.sources import RequestSource
from featurestore.definitions.view import FeatureView

__all__ = [
    "aggregation_definition",
    "feature_definition",
    "fingerprint",
    "normalized_source",
    "on_demand_definition",
]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def fingerprint(definition: dict[str, Any]) -> str:
    """16 hex characters of SHA-256 over the canonical JSON of a normalized definition."""
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _rules(feature: Feature) -> dict[str, Any]:
    return {
        "dtype": dtype_name(feature.dtype),
        "ge": _jsonable(feature.ge),
        "le": _jsonable(feature.le),
        "allowed": _jsonable(feature.allowed),
        "nullable": feature.nullable,
        "default": _jsonable(feature.default),
    }


def _source(view: FeatureView) -> dict[str, Any]:
    src = view.source
    return {
        "name": src.name,
        "path": src.path,
        "format": src.file_format,
        "timestamp_field": src.timestamp_field,
        "created_timestamp_field": src.created_timestamp_field,
    }


def feature_definition(view: FeatureView, feature: Feature) -> dict[str, Any]:
    """The normalized definition of a feature of a batch view."""
    return {
        "kind": "feature",
        "source": _source(view),
        "join_keys": view.join_keys,
        "ttl_seconds": view.ttl.total_seconds() if view.ttl is not None else None,
        "expr": str(feature.expr) if feature.expr is not None else None,
        "column": None if feature.expr is not None else feature.name,
        **_rules(feature),
    }


def aggregation_definition(view: FeatureView, agg: Aggregation) -> dict[str, Any]:
    """The normalized definition of a windowed aggregation of a batch view."""
    return {
        "kind": "aggregation",
        "function": agg.kind,
        "source": _source(view),
        "join_keys": view.join_keys,
        "column": agg.column,
        "window_us": agg.window_us,
        "dtype": dtype_name(agg.dtype),
    }


def on_demand_definition(
    odfv: OnDemandFeatureView, feature: Feature, input_fingerprints: dict[str, str]
) -> dict[str, Any]:
    """The normalized definition of an on-demand feature; inputs carry their own fingerprints."""
    inputs: dict[str, str] = {}
    for src in odfv.sources:
        if isinstance(src, RequestSource):
            inputs.update({f"{src.name}.{c}": dtype_name(d) for c, d in src.fields.items()})
        else:
            inputs.update(
                {
                    f"{src.name}:{f}": input_fingerprints[f"{src.name}:{f}"]
                    for f in src.feature_names
                }
            )
    return {
        "kind": "on_demand",
        "output": feature.name,
        "function": normalized_source(odfv.udf),
        "inputs": inputs,
        **_rules(feature),
    }


class _StripDocstrings(ast.NodeTransformer):
    def _strip(self, node: Any) -> Any:
        self.generic_visit(node)
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
        if hasattr(node, "decorator_list"):
            node.decorator_list = []
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _strip


def normalized_source(fn: Callable[..., Any]) -> str:
    """The function's code without comments, docstrings, decorators or formatting."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        code = fn.__code__
        return f"{code.co_code.hex()}:{code.co_consts!r}:{code.co_names!r}"
    return ast.unparse(_StripDocstrings().visit(tree))
