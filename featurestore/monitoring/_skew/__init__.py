"""Training/serving skew: replay the serving log through the offline engine and compare, value
by value, what was served with what a training set holds for the same keys, request data and
time.

Every logged entity row becomes one spine row (its join keys, its request data and its request
time), and the union of the features served in the window is computed once, point in time as
of each request, in DuckDB; a value is compared only where its feature was served. A feature
is flagged when its mismatches plus null mismatches exceed ``SkewConfig.max_mismatch_rate`` of
the rows compared, and each flagged feature gets its likely causes, each with the rows it
explains:

- a definition changed since serving (the fingerprint applied when the value was served is not
  the registry's now);
- values of an earlier definition (the online store served values computed before the apply
  then in force: the view was not materialized after it);
- a stale materialization (the online store served an older row, or older events, than the
  offline join found at the request time);
- pushed events missing offline (the online store held an event the source's files do not:
  a push with ``to="online"``, or events removed from the files since);
- for an on-demand output, which of its inputs differed online and offline, by name (or that
  none did: the function itself gives different results).

Mismatches within the limit give a warning, and a pass needs at least ``SkewConfig.min_rows``
rows compared (fewer give ``insufficient_data``).
"""

from featurestore.monitoring._skew._build import build_skew_report
from featurestore.monitoring._skew._report import SkewFeatureResult, SkewReport

__all__ = ["SkewFeatureResult", "SkewReport", "build_skew_report"]
