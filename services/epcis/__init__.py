"""EPCIS 2.0: capture, query and export of events."""
