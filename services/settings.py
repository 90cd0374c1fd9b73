"""The one place configuration is read (environment variables prefixed DAODI_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration; defaults run locally on SQLite under ./var."""

    model_config = SettingsConfigDict(env_prefix="DAODI_", extra="ignore")

    database_url: str = "sqlite:///./var/daodi.db"
    mqtt_url: str | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    log_origin: str = "daodi.dev/log/v1"
    key_dir: Path = Path("var/keys")
    checkpoint_interval: float = Field(default=0.25, gt=0, le=1.0)
    witness_urls: list[str] = Field(default_factory=list)
    """Witnesses to submit each new checkpoint to (JSON list in the environment)."""
    witness_vkeys: list[str] = Field(default_factory=list)
    """Their cosignature verifier keys, in the same order; published at /api/v1/keys."""
    background: bool = True
    """Run the checkpointer (and other workers) inside the app; tests may switch it off and drive them."""
    edge_client_id: str | None = None
    """MQTT client id of this gateway (its persistent session); default `daodi-edge-<hostname>`."""
    edge_group: str = "daodi-edge"
    """Shared-subscription group of the gateways (`$share/<group>/daodi/v1/+/+/data`)."""
    edge_roster: Path | None = None
    """Optional JSON roster of devices (demo and simulator) consulted after the registry tables."""
    edge_session_expiry: int = Field(default=7 * 86400, ge=0)
    """Seconds the broker keeps this gateway's session and queued QoS 1 messages while it is away."""
    edge_receive_maximum: int = Field(default=2000, ge=1, le=65535)
    """Unacknowledged QoS 1 messages the broker may have in flight to this gateway."""
    edge_max_batch: int = Field(default=512, ge=1)
    edge_check_threads: int | None = Field(default=None, ge=1, le=64)
    """Threads verifying signatures in one gateway; default one per CPU, at most 4. Gateways sharing a host
    should share its CPUs out (2 gateways on 2 CPUs: 1 each)."""
    sign_in_account_failures: int = Field(default=5, ge=1)
    """Failed mobile sign-ins allowed per account (or unknown login) per window; then 429 until it ends."""
    sign_in_network_failures: int = Field(default=100, ge=1)
    """Failed mobile sign-ins allowed per client network (see the prefixes) per window; then 429."""
    sign_in_window: int = Field(default=15 * 60, ge=1)
    """Seconds a window of failed sign-ins lasts, counted from its first failure."""
    sign_in_network_prefix_v4: int = Field(default=24, ge=8, le=32)
    """IPv4 prefix length grouping clients into one network for the sign-in limit (24: a /24)."""
    sign_in_network_prefix_v6: int = Field(default=64, ge=16, le=128)
    """IPv6 prefix length grouping clients into one network for the sign-in limit (64: a /64)."""

    @property
    def device_roster(self) -> Path:
        """Device roster shared by gateway and simulator: DAODI_EDGE_ROSTER, else var/edge/devices.json."""
        return self.edge_roster or self.key_dir.parent / "edge" / "devices.json"
