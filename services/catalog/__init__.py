"""Catalog: herbs, forms, daodi/GI regions, spec profiles, seasons and yields, loaded from data files."""
