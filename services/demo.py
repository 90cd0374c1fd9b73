"""`daodi demo`: the platform on its embedded defaults, with the URLs to open."""

from __future__ import annotations

import sys

import uvicorn

from services.app import create_app
from services.settings import Settings


def run_demo(*, host: str, port: int) -> int:
    """Build the platform from default settings, serve it, and print where to look."""
    settings = Settings()
    if settings.public_base_url == Settings.model_fields["public_base_url"].default:
        settings = settings.model_copy(update={"public_base_url": f"http://{host}:{port}"})
    app = create_app(settings)
    base = settings.public_base_url
    print(
        "\n".join(
            [
                "Daodi Trace demo",
                f"  database        {settings.database_url}",
                f"  keys            {settings.key_dir}",
                f"  API docs        {base}/docs",
                f"  checkpoint      {base}/ledger/checkpoint",
                f"  verifier key    {base}/ledger/vkey",
                f"  public keys     {base}/api/v1/keys",
                f"  audit the log   .venv/bin/daodi ledger verify --url {base}",
                "",
            ]
        ),
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(run_demo(host="127.0.0.1", port=8000))
