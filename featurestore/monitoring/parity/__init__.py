"""Parity before deploy: every feature through the offline path and through the serving code,
on the same sampled rows, before anything is applied (``featurestore apply --check``).

For a sample of entity keys and times drawn from the sources, :func:`check_parity` computes each
feature twice:

- offline, as a training set does: :meth:`OfflineEngine.training_frame` over the sample as a
  spine (an on-demand view runs once, on the whole frame);
- online, with the code that serves requests: :meth:`OnlineRetriever.get`, one spine row at a
  time at the row's time, over an in-memory online store that holds, for that row's entities,
  the bytes a materialization at the row's time would have written: the latest row the
  point-in-time join finds (:meth:`OfflineEngine.rows_as_of`), encoded as
  :func:`~featurestore.online._materialize.publish_batch` encodes it, and the entity's events in
  ``(t - longest window, t]`` (:meth:`WindowLayout.spine_events_sql`), encoded as
  :func:`~featurestore.online._publish_events.publish_events` encodes them; both are tagged with the
  digests of the checked definitions, so the retriever reads them as current values.

Both paths read the same source rows at the same times, so a difference is a difference of
code: typically an on-demand function whose result on one row differs from its result on a
batch (it normalizes by a mean over the frame, ranks, shifts, samples). A feature is flagged as
soon as one row differs, in value (floats within the feature's ``SkewConfig`` ``abs_tol`` and
``rel_tol``, as in the skew report) or in status. ``SkewConfig.max_mismatch_rate`` is not used:
skew tolerates a rate because served values may come from a late materialization or a source
rewritten since; here nothing but the code differs, so one differing row is already a bug.

See :mod:`featurestore.monitoring.parity._sample` for what is sampled, and
:mod:`featurestore.monitoring.parity._request_data` for the request values synthesized.
"""

from featurestore.monitoring.parity._check import check_parity
from featurestore.monitoring.parity._report import ParityFeatureResult, ParityReport

__all__ = ["ParityFeatureResult", "ParityReport", "check_parity"]
