"""Everything the CLI shows, by topic: consoles and JSON, progress, plans, validation, training
sets, materialization, online values, reports and status. Commands gather results from the
facade; these modules decide how they look."""

from featurestore.cli._render._console import console, dump_json, error, note, timestamp
from featurestore.cli._render._materialization import (
    guard_refusal,
    materialization,
    materialization_json,
    push_result,
)
from featurestore.cli._render._monitor import monitor_history, monitor_run, sparkline
from featurestore.cli._render._online import online, online_json, value_text
from featurestore.cli._render._plans import definitions, features, plan
from featurestore.cli._render._progress import Steps, ViewSteps, steps, view_steps
from featurestore.cli._render._reports import parity, parity_refusal, report
from featurestore.cli._render._status import repo_status
from featurestore.cli._render._statuses import STATUS_STYLES, status_counts, status_totals
from featurestore.cli._render._training import feature_table, training_json, training_summary
from featurestore.cli._render._validation import validation

__all__ = [
    "STATUS_STYLES",
    "Steps",
    "ViewSteps",
    "console",
    "definitions",
    "dump_json",
    "error",
    "feature_table",
    "features",
    "guard_refusal",
    "materialization",
    "materialization_json",
    "monitor_history",
    "monitor_run",
    "note",
    "online",
    "online_json",
    "parity",
    "parity_refusal",
    "plan",
    "push_result",
    "repo_status",
    "report",
    "sparkline",
    "status_counts",
    "status_totals",
    "steps",
    "timestamp",
    "training_json",
    "training_summary",
    "validation",
    "value_text",
    "view_steps",
]
