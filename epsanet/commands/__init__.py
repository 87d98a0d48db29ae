"""Subcommands of the ``epsanet`` command line (see :mod:`epsanet.cli`)."""
