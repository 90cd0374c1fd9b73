"""Daodi Trace services: domain areas, persistence, the HTTP app and the `daodi` command."""
