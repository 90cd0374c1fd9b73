"""The README's first steps: `make demo` prints what to open, and what it prints works."""

from __future__ import annotations

from newcomer import DemoPlatform


def test_the_demo_prints_a_key_per_role_and_label_uris_that_open(demo: DemoPlatform) -> None:
    assert {"admin", "grower", "processor", "lab", "buyer", "regulator"} <= set(demo.keys)
    assert len(demo.label_uris) >= 3
    with demo.client() as http:
        for uri in demo.label_uris.values():
            page = http.get(uri, headers={"Accept": "text/html"})
            assert page.status_code == 200, uri
            assert "text/html" in page.headers["content-type"]


def test_the_printed_audit_command_passes_on_the_demo_log(demo: DemoPlatform) -> None:
    audit = demo.daodi("ledger", "verify", "--url", demo.base)
    assert audit.returncode == 0, audit.stdout + audit.stderr
