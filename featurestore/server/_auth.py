"""Bearer-token access control of the feature server.

Tokens come from ``server.auth_tokens`` in featurestore.yaml plus the comma-separated
environment variable named by ``server.auth_tokens_env``; with none configured, auth is off.
A presented token is compared with every configured one in constant time.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping

from featurestore._config import ServerConfig

__all__ = ["BearerAuth", "configured_tokens"]


def configured_tokens(config: ServerConfig, environ: Mapping[str, str] | None = None) -> list[str]:
    """The tokens of ``config`` followed by those of its environment variable, deduplicated."""
    env = os.environ if environ is None else environ
    tokens = [t.strip() for t in config.auth_tokens]
    if config.auth_tokens_env:
        tokens += env.get(config.auth_tokens_env, "").split(",")
    return list(dict.fromkeys(t.strip() for t in tokens if t.strip()))


class BearerAuth:
    """Checks ``Authorization: Bearer <token>`` headers against the configured tokens."""

    def __init__(self, tokens: list[str]) -> None:
        self._tokens = [t.encode() for t in tokens]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def problem(self, header: bytes | None) -> str | None:
        """Why a request with this Authorization header is refused; None if it is allowed."""
        if not self._tokens:
            return None
        if header is None:
            return "this server requires a bearer token: send 'Authorization: Bearer <token>'"
        scheme, _, token = header.strip().partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return "the Authorization header must be 'Bearer <token>'"
        token = token.strip()
        ok = False
        for known in self._tokens:  # no early exit: every token is compared
            ok |= hmac.compare_digest(token, known)
        return None if ok else "the bearer token is not valid"
