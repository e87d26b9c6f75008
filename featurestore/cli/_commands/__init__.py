"""The verbs of the ``featurestore`` command, one module per group: the repo's definitions,
the offline verbs, materialization, serving and the reports. Each verb parses its options,
calls the facade and renders the result; shared options and value parsing have their own
modules."""

from featurestore.cli._commands._materialize import materialize, materialize_incremental, teardown
from featurestore.cli._commands._monitor import monitor
from featurestore.cli._commands._offline import training_set, validate
from featurestore.cli._commands._push import push
from featurestore.cli._commands._repo import apply, init, list_features, plan
from featurestore.cli._commands._reports import drift, skew, status
from featurestore.cli._commands._serving import get_online, serve

__all__ = ["COMMANDS"]

COMMANDS = [
    init,
    plan,
    apply,
    list_features,
    validate,
    training_set,
    materialize,
    materialize_incremental,
    push,
    teardown,
    get_online,
    serve,
    status,
    skew,
    drift,
    monitor,
]
