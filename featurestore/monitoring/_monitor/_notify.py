"""Sending alert events: always a structured log line, and a JSON POST to each webhook the rule
and the feature's owner name, retried with backoff within a timeout per attempt."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request

from featurestore.monitoring._monitor._alerts import AlertEvent

__all__ = ["log_event", "post_event"]

log = logging.getLogger("featurestore.monitoring")


def log_event(event: AlertEvent) -> None:
    """One log line per state change (warning when firing, info when resolved)."""
    level = logging.WARNING if event.state == "firing" else logging.INFO
    log.log(
        level,
        "alert %s alert=%s feature=%s statistic=%s value=%.6g threshold=%.6g window=%s..%s "
        "severity=%s owner=%s",
        event.state,
        event.alert,
        event.feature,
        event.statistic,
        event.value,
        event.threshold,
        event.window_start.isoformat(),
        event.window_end.isoformat(),
        event.severity,
        event.owner,
    )


def post_event(url: str, event: AlertEvent, *, timeout: float, retries: int) -> bool:
    """POST ``event`` as JSON to ``url``; True once a 2xx answer came, False after ``retries``
    more attempts failed (waiting 0.5 s, 1 s, 2 s, ... between them)."""
    body = json.dumps(event.to_json()).encode()
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(0.5 * 2 ** (attempt - 1))
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if 200 <= response.status < 300:
                    return True
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.warning(
                "alert webhook failed url=%s alert=%s feature=%s attempt=%d error=%s",
                url,
                event.alert,
                event.feature,
                attempt + 1,
                exc,
            )
    return False
