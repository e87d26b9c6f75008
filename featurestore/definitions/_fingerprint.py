"""Fingerprints: a short hash of everything that decides a feature's values.

What a fingerprint covers, per kind of feature:

- A plain feature: its source (name, path, format, timestamp and created timestamp columns;
  for a catalog table, its table too), the view's join keys and ttl, its dtype and validation
  rules (bounds, allowed values, nullability, default), and its expression by the
  expression's full serialized Polars plan (``Expr.meta.serialize``), which holds every
  argument: ``round(3)`` and ``round(2)``, or
  ``str.contains(".", literal=True)`` and ``literal=False``, have different fingerprints
  although Polars prints them alike. A top-level ``alias`` is left out (the output is named
  by the feature). A Polars upgrade that changes how a plan serializes changes the
  fingerprint: it may change values too, so it is reported as a change.
- A windowed aggregation: its kind, column, window, dtype, source and keys (not the view's
  ttl, which does not apply to it).
- An on-demand feature: the function's source without comments, docstrings, decorators or
  formatting; its bytecode and constants (so code whose source cannot be read is still
  covered); the values it reads from outside its body (module-level constants, closure
  variables, default arguments, the fields of dataclass and pydantic instances, and,
  recursively, the Python functions it calls, also behind ``functools`` wrappers); its output's
  dtype and rules; and the fingerprints of the features it takes as inputs. A view source
  counts all of the view's features; a ``"view:feature"`` source only that feature. Upgrading
  Python changes bytecode, hence these fingerprints. A referenced module counts by name, a class
  by its qualified name, and an instance of another kind of object by its type, not by their
  code or contents.

Owner, description and tags are metadata and never change a fingerprint.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import decimal
import enum
import functools
import hashlib
import inspect
import io
import json
import textwrap
import threading
import types
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl
from pydantic import BaseModel

from featurestore.definitions._aggregation import Aggregation
from featurestore.definitions._dtypes import dtype_name
from featurestore.definitions._feature import Feature, expression_plan
from featurestore.definitions._on_demand import OnDemandFeatureView
from featurestore.definitions._sources import RequestSource, TableSource
from featurestore.definitions._view import FeatureView

__all__ = [
    "aggregation_definition",
    "feature_definition",
    "fingerprint",
    "function_definition",
    "normalized_source",
    "on_demand_definition",
    "parse_python",
]

# CPython keeps the AST constructor's recursion depth per interpreter, and some releases (3.11.7
# among them) can leave it wrong (gh-106905): every later ast.parse in the process then raises
# SystemError "AST constructor recursion depth mismatch". featurestore's own parses (repo loads
# and fingerprints, which a serving process's reload watcher runs beside its request threads)
# never overlap.
_PARSE_LOCK = threading.Lock()


def parse_python(source: str | bytes, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse``, one call at a time in this process (see ``_PARSE_LOCK``)."""
    with _PARSE_LOCK:
        return ast.parse(source, filename)


# co_flags bit of a code object whose first constant is its docstring (Python 3.14+)
_HAS_DOCSTRING: int | None = getattr(inspect, "CO_HAS_DOCSTRING", None)


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
    """What of a view's source decides its values. A file source's entries are fixed (its
    features' fingerprints must not move); a table source adds its table, so moving the view
    to another table, or its files to another path, is a change."""
    src = view.source
    out = {
        "name": src.name,
        "path": src.path,
        "format": src.file_format,
        "timestamp_field": src.timestamp_field,
        "created_timestamp_field": src.created_timestamp_field,
    }
    if isinstance(src, TableSource):
        out["table"] = src.table
    return out


def feature_definition(view: FeatureView, feature: Feature) -> dict[str, Any]:
    """The normalized definition of a feature of a batch view."""
    return {
        "kind": "feature",
        "source": _source(view),
        "join_keys": view.join_keys,
        "ttl_seconds": view.ttl.total_seconds() if view.ttl is not None else None,
        "expr": expression_plan(feature.expr) if feature.expr is not None else None,
        "expr_bytes": _plan_digest(feature.expr) if feature.expr is not None else None,
        "column": None if feature.expr is not None else feature.name,
        **_rules(feature),
    }


def _plan_digest(expr: pl.Expr) -> str:
    """SHA-256 of the binary serialized plan: it keeps what the JSON form loses (a NaN, an
    infinite and a null float literal are all ``null`` in JSON). Top-level aliases are left
    out, as in :func:`expression_plan`."""
    while list(json.loads(expr.meta.serialize(format="json"))) == ["Alias"]:
        expr = expr.meta.pop()[0]
    return hashlib.sha256(expr.meta.serialize(format="binary")).hexdigest()[:16]


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
    odfv: OnDemandFeatureView,
    feature: Feature,
    input_refs: list[tuple[str, str]],
    input_fingerprints: Mapping[str, str],
    function: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The normalized definition of an on-demand feature. ``input_refs`` are the (view,
    feature) inputs the view declares, each covered by its fingerprint; ``function`` is the
    view's :func:`function_definition` when taken already (when its module was loaded)."""
    inputs: dict[str, str] = {}
    for src in odfv.sources:
        if isinstance(src, RequestSource):
            inputs.update({f"{src.name}.{c}": dtype_name(d) for c, d in src.fields.items()})
    for view, name in input_refs:
        inputs[f"{view}:{name}"] = input_fingerprints[f"{view}:{name}"]
    return {
        "kind": "on_demand",
        "output": feature.name,
        "function": function if function is not None else function_definition(odfv.udf),
        "inputs": inputs,
        **({"mode": odfv.mode} if odfv.mode != "frame" else {}),  # frame: as before modes
        **_rules(feature),
    }


# --- functions ----------------------------------------------------------------------------


def function_definition(fn: Callable[..., Any]) -> dict[str, Any]:
    """Everything of a Python function that decides what it computes (see the module
    docstring): normalized source, bytecode and constants, and the outside values it reads."""
    if not isinstance(fn, types.FunctionType):  # a partial or a callable object
        return {"callable": _value(fn, set())}
    return _function(fn, set())


def _function(fn: Callable[..., Any], seen: set[int]) -> dict[str, Any]:
    seen.add(id(fn))
    code: types.CodeType = fn.__code__
    names = _global_names(code)
    namespace: dict[str, Any] = getattr(fn, "__globals__", {})
    cells = getattr(fn, "__closure__", None) or ()
    return {
        "source": normalized_source(fn),
        "code": _code(code),
        "globals": {n: _value(namespace[n], seen) for n in sorted(names) if n in namespace},
        "closure": {
            n: _value(_cell(c), seen) for n, c in zip(code.co_freevars, cells, strict=False)
        },
        "defaults": _value(getattr(fn, "__defaults__", None), seen),
        "kwdefaults": _value(getattr(fn, "__kwdefaults__", None), seen),
    }


def _cell(cell: types.CellType) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell: a variable not yet assigned
        return None


def _global_names(code: types.CodeType) -> set[str]:
    """Names a code object and the code nested in it may look up as globals."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _has_docstring_slot(code: types.CodeType) -> bool:
    """Whether the first constant is the function's docstring slot (the docstring, or None
    for a ``def`` without one before Python 3.14)."""
    if code.co_name.startswith("<"):  # lambdas, comprehensions, modules
        return False
    if _HAS_DOCSTRING is not None:
        return bool(code.co_flags & _HAS_DOCSTRING)
    return bool(code.co_consts) and (
        code.co_consts[0] is None or isinstance(code.co_consts[0], str)
    )


def _code(code: types.CodeType) -> dict[str, Any]:
    """Bytecode, constants (recursively, without docstrings) and names of a code object."""
    consts = code.co_consts[1:] if _has_docstring_slot(code) else code.co_consts
    return {
        "bytecode": code.co_code.hex(),
        "consts": [_code(c) if isinstance(c, types.CodeType) else _constant(c) for c in consts],
        "names": list(code.co_names),
        "args": [code.co_argcount, code.co_kwonlyargcount, code.co_flags & 0x0F],
    }


def _constant(value: Any) -> Any:
    """A code constant: a scalar, or a tuple or frozenset of them (sorted: set order varies
    from process to process with string hashing)."""
    if isinstance(value, frozenset):
        return {"frozenset": sorted(repr(v) for v in value)}
    if isinstance(value, tuple):
        return {"tuple": [_constant(v) for v in value]}
    return {"type": type(value).__name__, "repr": repr(value)}


def _value(value: Any, seen: set[int]) -> Any:
    """A value a function reads from outside its body, as stable JSON data: never a memory
    address, so the same definition gives the same fingerprint in every process."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return {"type": type(value).__name__, "repr": repr(value)}
    if isinstance(value, enum.Enum):
        return {"enum": f"{type(value).__qualname__}.{value.name}", "value": repr(value.value)}
    if isinstance(value, dt.date | dt.time | dt.timedelta | decimal.Decimal):
        return {"type": type(value).__name__, "repr": repr(value)}
    if isinstance(value, list | tuple):
        return {type(value).__name__: [_value(v, seen) for v in value]}
    if isinstance(value, set | frozenset):
        items = [_value(v, seen) for v in value]
        return {"set": sorted(items, key=lambda v: json.dumps(v, sort_keys=True, default=str))}
    if isinstance(value, dict):
        return {"dict": sorted([repr(k), _value(v, seen)] for k, v in value.items())}
    if isinstance(value, pl.Expr):
        try:
            return {"expr": expression_plan(value)}
        except ValueError:
            return {"expr": str(value)}
    if isinstance(value, pl.DataType):
        return {"dtype": dtype_name(value)}
    if isinstance(value, pl.Series | pl.DataFrame):
        frame = value.to_frame() if isinstance(value, pl.Series) else value
        buffer = io.BytesIO()
        frame.write_ipc(buffer, compression="uncompressed")
        return {"frame": hashlib.sha256(buffer.getvalue()).hexdigest()}
    if type(value).__module__ == "numpy" and hasattr(value, "tobytes"):
        digest = hashlib.sha256(value.tobytes()).hexdigest()
        return {
            "array": [str(getattr(value, "dtype", "")), list(getattr(value, "shape", ())), digest]
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        attrs = {f.name: _value(getattr(value, f.name), seen) for f in dataclasses.fields(value)}
        return {"dataclass": f"{type(value).__qualname__}", "fields": attrs}
    if isinstance(value, BaseModel):
        fields = {k: _value(v, seen) for k, v in value.__dict__.items()}
        return {"model": f"{type(value).__qualname__}", "fields": fields}
    if isinstance(value, functools.partial):
        return {
            "partial": _value(value.func, seen),
            "args": _value(value.args, seen),
            "keywords": _value(value.keywords, seen),
        }
    if isinstance(value, types.FunctionType):
        if id(value) in seen:
            return {"function": value.__qualname__}  # recursion: already covered
        return {"function": _function(value, seen)}
    wrapped = getattr(value, "__wrapped__", None)  # functools.cache, wraps-decorated helpers
    if callable(value) and isinstance(wrapped, types.FunctionType):
        return {"wraps": _value(wrapped, seen)}
    if isinstance(value, types.ModuleType):
        return {"module": value.__name__}
    if isinstance(value, type):
        return {"class": f"{value.__module__}.{value.__qualname__}"}
    kind = type(value)
    return {"object": f"{kind.__module__}.{kind.__qualname__}"}


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


def normalized_source(fn: Callable[..., Any]) -> str | None:
    """The function's code without comments, docstrings, decorators or formatting; None when
    its source cannot be read (the bytecode still covers it)."""
    try:
        tree = parse_python(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return None
    return ast.unparse(_StripDocstrings().visit(tree))
