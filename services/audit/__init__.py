"""Regulator audit: findings across the platform, compliance, holds and recalls, lineage exports."""
