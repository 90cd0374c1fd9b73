"""QR labels: GS1 Digital Link URIs signed with the label key, QR images, printable sheets, lifecycle."""
