"""Alert rules over windows: per rule and feature, a small state machine that fires once when
the statistic has been past its threshold for ``consecutive`` windows in a row, resolves once
when a window is back under it, and stays quiet for ``cooldown`` after a resolve. Windows with
too few rows for the statistic change nothing."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from featurestore._config import AlertRule
from featurestore._times import parse_duration

__all__ = ["AlertEvent", "Track", "step_alert"]


@dataclass(frozen=True)
class AlertEvent:
    """One state change of one alert for one feature: what a webhook receives."""

    alert: str
    feature: str
    statistic: str
    value: float
    threshold: float
    window_start: dt.datetime
    window_end: dt.datetime
    state: Literal["firing", "resolved"]
    severity: str = "warning"
    owner: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["window_start"] = self.window_start.isoformat()
        out["window_end"] = self.window_end.isoformat()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlertEvent:
        return cls(
            alert=data["alert"],
            feature=data["feature"],
            statistic=data["statistic"],
            value=float(data["value"]),
            threshold=float(data["threshold"]),
            window_start=dt.datetime.fromisoformat(data["window_start"]),
            window_end=dt.datetime.fromisoformat(data["window_end"]),
            state=data["state"],
            severity=data.get("severity", "warning"),
            owner=data.get("owner"),
        )


@dataclass
class Track:
    """Where one rule stands for one feature."""

    firing: bool = False
    streak: int = 0  # windows in a row past the threshold
    quiet_until: dt.datetime | None = None  # the end of the cooldown after the last resolve
    fired: dict[str, Any] | None = field(default=None)  # the firing event of the incident

    def to_json(self) -> dict[str, Any]:
        return {
            "firing": self.firing,
            "streak": self.streak,
            "quiet_until": None if self.quiet_until is None else self.quiet_until.isoformat(),
            "fired": self.fired,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Track:
        quiet = data.get("quiet_until")
        return cls(
            firing=bool(data.get("firing")),
            streak=int(data.get("streak", 0)),
            quiet_until=None if quiet is None else dt.datetime.fromisoformat(quiet),
            fired=data.get("fired"),
        )


def _cooldown(rule: AlertRule) -> dt.timedelta:
    return parse_duration(rule.cooldown) or dt.timedelta(0)


def step_alert(
    rule: AlertRule, feature: str, owner: str | None, point: dict[str, Any], track: Track
) -> AlertEvent | None:
    """Advance ``track`` by one window's ``point``; the event this window causes, if any."""
    value = point.get(rule.statistic)
    threshold = (
        point.get(f"{rule.statistic}_threshold")
        if rule.threshold == "calibrated"
        else rule.threshold
    )
    if value is None or threshold is None:
        return None
    past = value > threshold

    def event(state: Literal["firing", "resolved"]) -> AlertEvent:
        return AlertEvent(
            rule.name,
            feature,
            rule.statistic,
            float(value),
            float(threshold),
            point["start"],
            point["end"],
            state,
            rule.severity,
            owner,
        )

    if track.firing:
        if past:
            return None
        track.firing, track.streak, track.fired = False, 0, None
        track.quiet_until = point["end"] + _cooldown(rule)
        return event("resolved")
    track.streak = track.streak + 1 if past else 0
    quiet = track.quiet_until is not None and point["end"] < track.quiet_until
    if track.streak >= rule.consecutive and not quiet:
        fired = event("firing")
        track.firing, track.fired = True, fired.to_json()
        return fired
    return None
