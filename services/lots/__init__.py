"""Lots and events: from seed lot to decoction piece, lineage and trace."""
