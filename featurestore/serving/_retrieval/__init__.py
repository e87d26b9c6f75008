"""Online retrieval: read the online store, apply staleness and defaults, run on-demand views
through the shared transform code. One store round trip per view, whatever the entity count.

Every stored value names the definitions it was computed with (its digest, see
:mod:`featurestore.online._published`). A value computed by an earlier definition than the
applied one is served, until the view is rebuilt, under the fingerprint it was computed with,
and the response says it differs from the applied one: an apply never turns into an outage of
defaults. Where no value of the applied or an earlier definition can be served (a feature added
since the last materialization; an aggregation whose stored events miss its input or its
window), the value is withheld as ``STALE``. An on-demand output computed from such inputs is
reported under the fingerprint its inputs give it.

The retriever (``_retriever``) works out a plan once per selection (``_plan``), checks each
request's columns (``_request``), reads each view in one store call (``_fetch``): its plain
features (``_features``) and its aggregation windows (``_windows``), then runs the on-demand
views (``_on_demand``).
"""

from featurestore.serving._retrieval._retriever import OnlineRetriever

__all__ = ["OnlineRetriever"]
