"""The base of every definition: a frozen pydantic model whose errors name the definition."""

from __future__ import annotations

import re
import sys
from functools import partial
from types import FrameType
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, PrivateAttr, ValidationError

from featurestore.errors import DefinitionError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_identifier(value: str, what: str = "name") -> str:
    """Names become column and table names, so they must be plain identifiers."""
    if not _IDENTIFIER.match(value):
        raise ValueError(
            f"{what} {value!r} must start with a letter or underscore and contain only "
            "letters, digits and underscores"
        )
    if value.startswith("__fs"):
        raise ValueError(f"{what} {value!r} uses the reserved prefix '__fs'")
    return value


def identifier(what: str) -> AfterValidator:
    """The validator of a name field: ``Annotated[str, identifier("feature name")]``; errors
    call the name ``what``."""
    return AfterValidator(partial(check_identifier, what=what))


Identifier = Annotated[str, identifier("name")]  # a definition's name


def split_ref(ref: str) -> tuple[str, str]:
    """Split a ``"view:feature"`` reference; both parts must be identifiers."""
    parts = ref.split(":") if isinstance(ref, str) else []
    if len(parts) != 2 or not all(_IDENTIFIER.match(p) for p in parts):
        raise ValueError(
            f"feature reference {ref!r} must look like 'view:feature', e.g. 'user_profile:age'"
        )
    return parts[0], parts[1]


def _caller_file() -> str | None:
    """The first file on the stack outside featurestore and pydantic: where a definition is made."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not name.startswith(("featurestore.", "pydantic")):
            return frame.f_code.co_filename
        frame = frame.f_back
    return None


def did_you_mean(name: str, known: list[str], prefix: str = "") -> str:
    """' Did you mean 'x'?' for the closest known name (shown with ``prefix``), or ''."""
    import difflib

    if not isinstance(name, str):  # a wrong type of name resembles nothing
        return ""
    close = difflib.get_close_matches(name, known, n=1)
    return f" Did you mean '{prefix}{close[0]}'?" if close else ""


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class Definition(BaseModel):
    """Frozen model; positional arguments fill ``_positional`` fields in order.

    Type checkers see pydantic's keyword-only constructor, so each public subclass declares
    its real signature (positional ``_positional`` fields, keyword-only rest) under
    ``TYPE_CHECKING``; at run time every call goes through the ``__init__`` below.
    """

    model_config = ConfigDict(
        frozen=True, arbitrary_types_allowed=True, extra="forbid", validate_by_name=True
    )
    _positional: ClassVar[tuple[str, ...]] = ("name",)
    _origin: str | None = PrivateAttr(default=None)

    def __init__(self, *args: Any, **data: Any) -> None:
        kind = type(self).__name__
        if len(args) > len(self._positional):
            raise DefinitionError(
                f"{kind} takes at most {len(self._positional)} positional argument(s) "
                f"({', '.join(self._positional)}); pass the rest by keyword"
            )
        for field, value in zip(self._positional, args, strict=False):
            if field in data:
                raise DefinitionError(f"{kind}: {field!r} given both by position and keyword")
            data[field] = value
        try:
            super().__init__(**data)
        except ValidationError as exc:
            name = data.get("name")
            label = f"{kind} {name!r}" if isinstance(name, str) else kind
            problems = []
            for err in exc.errors():
                msg = err["msg"].removeprefix("Value error, ")
                where = _location(err["loc"])
                if err["type"] == "missing":
                    problems.append(f"field {where!r} is required: add {where}=... to {kind}(...)")
                    continue
                found = err.get("input")
                shown = "" if err["type"] == "value_error" else f" (found {found!r:.80})"
                problems.append(f"field {where!r}: {msg}{shown}" if where else f"{msg}{shown}")
            raise DefinitionError(f"{label}: " + "; ".join(problems)) from None
        self._origin = _caller_file()

    @property
    def origin(self) -> str | None:
        """The file whose code created this definition."""
        return self._origin

    def __eq__(self, other: object) -> bool:  # by field values; where it was made does not count
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self).__name__, getattr(self, "name", None)))
