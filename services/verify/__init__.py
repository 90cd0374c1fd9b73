"""Public verification: resolver, verdict, proof bundles, scan analytics."""
