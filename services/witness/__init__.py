"""Witnesses: the regulator's cosigning service, and the log's client that collects cosignatures."""
