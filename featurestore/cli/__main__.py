"""``python -m featurestore.cli``: the ``featurestore`` command."""

from featurestore.cli._main import main

main(prog_name="featurestore")
