"""Grower-facing mobile API: sign-in, label activation at harvest, offline sync."""
