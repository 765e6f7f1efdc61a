"""Kefu's configuration: one typed object read from the environment (and `.env`)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The repository root: config.yml, domain.yml and data/ live here."""

LOCAL_RASA_TOKEN = "kefu-local-token"  # noqa: S105 (refused in production)
"""The Rasa API token of local runs; refused when `KEFU_ENV=production`."""

LOCAL_CUSTOMER_SESSION_SECRET = "kefu-local-customer-sessions"  # noqa: S105 (refused in production)
"""Signs web-chat customer sessions in local runs; refused when `KEFU_ENV=production`."""

LOCAL_ACTION_TOKEN = "kefu-local-action-token"  # noqa: S105 (refused in production)
"""What Rasa shows the action server in local runs; refused when `KEFU_ENV=production`."""

MIN_SECRET_LENGTH = 24
"""The shortest secret production accepts (tokens, signing keys, webhook secrets)."""

DEMO_AGENT_PASSWORD = "kefu-demo-agent"  # noqa: S105 (refused in production)
"""The demo agent's password of local runs; production runs have no demo password."""


class SettingsError(ValueError):
    """The configuration is unsafe or inconsistent."""


class Settings(BaseSettings):
    """Every setting of Kefu. Environment variables are `KEFU_<FIELD NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix="KEFU_", env_file=".env", extra="ignore", populate_by_name=True
    )

    env: Literal["local", "production"] = "local"
    host: str = Field("127.0.0.1", description="Interface every Kefu server binds to.")
    web_port: int = Field(8000, description="Web chat page (and later the agent desk).")
    rasa_port: int = Field(5005, description="Rasa server: channels and HTTP API.")
    actions_port: int = Field(5055, description="rasa-sdk action server.")
    rasa_public_url: str = Field(
        "", description="Rasa URL as browsers reach it; default http://HOST:RASA_PORT."
    )
    rasa_token: str = Field(LOCAL_RASA_TOKEN, description="Auth token of Rasa's HTTP API.")
    var_dir: Path = Field(PROJECT_ROOT / "var", description="Models, databases, logs, downloads.")
    data_dir: Path = Field(
        PROJECT_ROOT / "data",
        description="The data editors change: nlu/, knowledge/ and kb_test_queries.jsonl.",
    )
    database_url: str = Field(
        "", description="App database; default sqlite:///VAR_DIR/data/kefu.db."
    )
    tracker_store_url: str = Field(
        "", description="Rasa conversations; default sqlite:///VAR_DIR/rasa/tracker.db."
    )
    event_broker_url: str = Field(
        "", description="Rasa event broker; default sqlite:///VAR_DIR/rasa/events.db."
    )
    lock_store_url: str = Field(
        "memory://", description="Rasa lock store: memory:// or redis://host:6379/0."
    )
    rasa_instances: int = Field(
        1,
        ge=1,
        le=16,
        description=(
            "Rasa processes. Above 1, `kefu demo` runs the scale-out stack: HAProxy in front, "
            "PostgreSQL, Redis and RabbitMQ started locally (docs/scale-out.md)."
        ),
    )
    action_workers: int = Field(
        0,
        ge=0,
        le=16,
        description="Action-server processes in the scale-out stack; 0: one per Rasa instance.",
    )
    socketio_redis_url: str = Field(
        "",
        description=(
            "Redis shared by the Rasa instances' socket.io servers (redis://host:6379/1), so a "
            "reply reaches a web-chat customer connected to another instance; empty: one process."
        ),
    )
    action_timeout_seconds: float = Field(
        20.0,
        description=(
            "How long Rasa waits for a custom action before the customer gets the system-busy "
            "apology (a non-positive value: Rasa's 5 minutes)."
        ),
    )
    rasa_spool_path: str = Field(
        "",
        description=(
            "Customer messages Rasa could not store (tracker or lock store down), replayed "
            "once it can; default VAR_DIR/rasa/spool.db."
        ),
    )
    rasa_bin: Path = Field(
        PROJECT_ROOT / ".venv-rasa" / "bin" / "rasa", description="The Rasa runtime's CLI."
    )
    app_python: Path = Field(
        PROJECT_ROOT / ".venv-app" / "bin" / "python", description="The app runtime."
    )
    gate_max_macro_f1_drop: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="`kefu gate`: largest macro-F1 drop from the deployed model.",
    )
    gate_intent_f1_floor: float = Field(
        0.7, ge=0.0, le=1.0, description="`kefu gate`: lowest held-out F1 any intent may have."
    )
    gate_intent_floors: str = Field(
        "", description="`kefu gate`: per-intent floors, e.g. 'order_status=0.8,greet=0.6'."
    )
    smtp_host: str = Field("", description="SMTP server of emailed copies; empty = no email.")
    smtp_port: int = Field(25, description="SMTP server port (587 with STARTTLS, usually).")
    smtp_username: str = Field("", description="SMTP login; empty = no authentication.")
    smtp_password: str = Field("", description="SMTP password of SMTP_USERNAME.")
    smtp_sender: str = Field("kefu@localhost", description="From address of emailed copies.")
    smtp_starttls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_timeout_seconds: float = Field(10, description="Timeout of each SMTP operation.")
    desk_session_hours: float = Field(12, description="Lifetime of an agent desk login.")
    desk_login_max_failures: int = Field(
        5, description="Failed desk logins (per username and client address) before a lockout."
    )
    desk_login_window_minutes: int = Field(
        15, description="Window in which failed desk logins count towards the lockout."
    )
    demo_agent_password: str = Field(
        DEMO_AGENT_PASSWORD, description="Password of the seeded `demo-agent` desk login."
    )
    demo_day: bool = Field(
        True,
        description="`kefu demo` loads a generated day of conversations (yesterday and today "
        "so far, `kefu demo-day`) into a database that has none, so the supervisors' dashboard "
        "is not empty; KEFU_DEMO_DAY=0 turns it off.",
    )
    channel_state_url: str = Field(
        "",
        description="Channels' deduplication, option numbers and WeChat access token: "
        "default sqlite:///VAR_DIR/rasa/channels.db, or redis://host:6379/0.",
    )
    # The messaging channels keep the names their platforms' docs use (no KEFU_ prefix).
    # A channel whose token is empty is not enabled.
    wechat_token: str = Field("", validation_alias="WECHAT_TOKEN")
    wechat_app_id: str = Field("", validation_alias="WECHAT_APP_ID")
    wechat_app_secret: str = Field("", validation_alias="WECHAT_APP_SECRET")
    wechat_encoding_aes_key: str = Field(
        "", validation_alias="WECHAT_ENCODING_AES_KEY", description="Empty = plain mode."
    )
    wechat_api_base_url: str = Field(
        "https://api.weixin.qq.com", validation_alias="WECHAT_API_BASE_URL"
    )
    telegram_token: str = Field("", validation_alias="TELEGRAM_TOKEN")
    telegram_secret_token: str = Field("", validation_alias="TELEGRAM_SECRET_TOKEN")
    telegram_api_base_url: str = Field(
        "https://api.telegram.org", validation_alias="TELEGRAM_API_BASE_URL"
    )
    customer_session_secret: str = Field(
        LOCAL_CUSTOMER_SESSION_SECRET,
        description="Signs the web chat's customer sessions (web service and Rasa share it).",
    )
    customer_session_hours: float = Field(24, description="Lifetime of a web-chat session.")
    shop_identity_secret: str = Field(
        "",
        description="HMAC key of the shop's logged-in users (user_hash = HMAC-SHA256(key, "
        "user id)); empty = no shop identities.",
    )
    rest_token: str = Field(
        "",
        description="Bearer token of the server-to-server REST channel; required in production.",
    )
    action_token: str = Field(
        LOCAL_ACTION_TOKEN, description="Shared secret Rasa sends the action server."
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-For is "
        "believed; empty = the peer address is the client.",
    )
    rasa_api_allowed: str = Field(
        "127.0.0.1,::1",
        description="In production, the client addresses that may use Rasa's HTTP API "
        "(the channels' webhooks stay public).",
    )
    max_json_bytes: int = Field(64 * 1024, description="Largest JSON body any server reads.")
    max_form_bytes: int = Field(16 * 1024, description="Largest form body the web service reads.")
    followups_interval_seconds: float = Field(
        5, gt=0, description="How often the follow-up scheduler looks for what is due."
    )
    followups_lease_seconds: float = Field(
        60, gt=0, description="How long a worker's claim on a notice lasts (a crash frees it)."
    )
    followups_batch_size: int = Field(100, gt=0, description="Notices a worker claims at once.")
    supervision_interval_seconds: float = Field(
        10, gt=0, description="How often the QA service records, closes and scores conversations."
    )
    reports_dir: Path | None = Field(
        None, description="Where built reports go; default VAR_DIR/reports."
    )
    sms_log_path: Path | None = Field(
        None, description="The logged SMS sender's file; default VAR_DIR/logs/sms.log."
    )

    @model_validator(mode="after")
    def _fill_defaults_and_refuse_placeholders(self) -> Settings:
        self.var_dir = self.var_dir.resolve()
        self.data_dir = self.data_dir.resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'data' / 'kefu.db'}"
        if not self.tracker_store_url:
            self.tracker_store_url = f"sqlite:///{self.var_dir / 'rasa' / 'tracker.db'}"
        if not self.event_broker_url:
            self.event_broker_url = f"sqlite:///{self.var_dir / 'rasa' / 'events.db'}"
        if not self.channel_state_url:
            self.channel_state_url = f"sqlite:///{self.var_dir / 'rasa' / 'channels.db'}"
        if self.reports_dir is None:
            self.reports_dir = self.var_dir / "reports"
        if self.sms_log_path is None:
            self.sms_log_path = self.var_dir / "logs" / "sms.log"
        if not self.rasa_public_url:
            self.rasa_public_url = f"http://{self.host}:{self.rasa_port}"
        if self.env == "production" and (
            self.rasa_token == LOCAL_RASA_TOKEN or len(self.rasa_token) < 16
        ):
            raise SettingsError(
                "KEFU_RASA_TOKEN must be set to a secret of at least 16 characters "
                f"in production (try: {secrets.token_urlsafe(24)})."
            )
        if self.env == "production":
            self._refuse_weak_secrets()
        if self.env == "production" and self.demo_agent_password == DEMO_AGENT_PASSWORD:
            if "demo_agent_password" in self.model_fields_set:
                raise SettingsError(
                    "KEFU_DEMO_AGENT_PASSWORD must not be the published demo password "
                    "in production (leave it empty: production seeds no demo agent)."
                )
            self.demo_agent_password = ""  # no demo login with a published password
        try:
            floors = self.intent_floors
        except ValueError as error:
            raise SettingsError(
                f"KEFU_GATE_INTENT_FLOORS must look like 'intent=0.8,other=0.6': {error}"
            ) from error
        if any(not 0.0 <= floor <= 1.0 for floor in floors.values()):
            raise SettingsError("KEFU_GATE_INTENT_FLOORS: every floor must be between 0 and 1.")
        if self.tracker_store_url == self.event_broker_url:
            raise SettingsError(
                "The tracker store and the event broker both name a table 'events': "
                "give them separate databases."
            )
        return self

    def _refuse_weak_secrets(self) -> None:
        """Production needs real secrets: no published default, none shorter than 24 characters."""
        required = {
            "KEFU_CUSTOMER_SESSION_SECRET": (
                self.customer_session_secret,
                LOCAL_CUSTOMER_SESSION_SECRET,
            ),
            "KEFU_ACTION_TOKEN": (self.action_token, LOCAL_ACTION_TOKEN),
            "KEFU_REST_TOKEN": (self.rest_token, ""),
        }
        optional = {
            "KEFU_SHOP_IDENTITY_SECRET": self.shop_identity_secret,
            "TELEGRAM_SECRET_TOKEN": self.telegram_secret_token if self.telegram_token else "",
        }
        weak = [
            name
            for name, (value, default) in required.items()
            if value == default or len(value) < MIN_SECRET_LENGTH
        ] + [name for name, value in optional.items() if value and len(value) < MIN_SECRET_LENGTH]
        if self.telegram_token and not self.telegram_secret_token:
            weak.append("TELEGRAM_SECRET_TOKEN")
        if self.wechat_token and not self.wechat_encoding_aes_key:
            raise SettingsError(
                "WeChat plain mode is refused in production: set WECHAT_ENCODING_AES_KEY "
                "(safe mode, the signature then covers the message)."
            )
        if weak:
            raise SettingsError(
                f"{', '.join(weak)}: set a secret of at least {MIN_SECRET_LENGTH} characters "
                f"in production (try: {secrets.token_urlsafe(32)})."
            )

    @property
    def trusted_proxy_addresses(self) -> frozenset[str]:
        """`trusted_proxies` as a set of addresses."""
        return frozenset(filter(None, (part.strip() for part in self.trusted_proxies.split(","))))

    @property
    def intent_floors(self) -> dict[str, float]:
        """`gate_intent_floors` as a mapping (validated when the settings are read)."""
        floors: dict[str, float] = {}
        for pair in filter(None, (part.strip() for part in self.gate_intent_floors.split(","))):
            intent, _, value = pair.partition("=")
            floors[intent.strip()] = float(value)
        return floors

    @property
    def rasa_url(self) -> str:
        """Rasa's URL for Kefu's own servers."""
        return f"http://{self.host}:{self.rasa_port}"

    @property
    def action_endpoint_url(self) -> str:
        """The action server's webhook, as Rasa calls it."""
        return f"http://{self.host}:{self.actions_port}/webhook"

    @property
    def web_url(self) -> str:
        """The web chat page."""
        return f"http://{self.host}:{self.web_port}/"

    @property
    def models_dir(self) -> Path:
        """Trained Rasa models, named by the fingerprint of their inputs."""
        return self.var_dir / "models"

    @property
    def knowledge_dir(self) -> Path:
        """Published knowledge-base index versions (knowledge_index reads KEFU_KB_VAR_DIR)."""
        return self.var_dir / "knowledge"

    @property
    def knowledge_source_dir(self) -> Path:
        """The knowledge base's YAML topic files."""
        return self.data_dir / "knowledge"

    @property
    def nlu_dir(self) -> Path:
        """The NLU training examples (Rasa YAML)."""
        return self.data_dir / "nlu"

    @property
    def webchat_dir(self) -> Path:
        """The rasa-webchat bundle prepared by `make install` (fonts import stripped)."""
        return self.var_dir / "webchat"

    def create_sqlite_folders(self) -> None:
        """Creates the folders of every SQLite database the settings name."""
        urls = (
            self.database_url,
            self.tracker_store_url,
            self.event_broker_url,
            self.channel_state_url,
        )
        for url in urls:
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)

    def as_environment(self) -> dict[str, str]:
        """These settings as `KEFU_*` variables, so child processes see the same configuration."""
        environment = {
            _environment_name(name, info.validation_alias): str(getattr(self, name))
            for name, info in type(self).model_fields.items()
            if getattr(self, name) is not None
        }
        environment["KEFU_KB_VAR_DIR"] = str(self.knowledge_dir)
        environment["KEFU_KB_SOURCE_DIR"] = str(self.knowledge_source_dir)
        return environment

    def rasa_environment(self) -> dict[str, str]:
        """The variables `endpoints.yml` and `credentials.yml` read, for the Rasa process."""
        return {
            "KEFU_ACTION_ENDPOINT_URL": self.action_endpoint_url,
            "KEFU_TRACKER_STORE_URL": self.tracker_store_url,
            "KEFU_EVENT_BROKER_URL": self.event_broker_url,
            "KEFU_LOCK_STORE_URL": self.lock_store_url,
            "KEFU_SOCKETIO_REDIS_URL": self.socketio_redis_url,
            "KEFU_ACTION_TIMEOUT_SECONDS": str(self.action_timeout_seconds),
            "KEFU_RASA_SPOOL_PATH": self.rasa_spool_path or str(self.var_dir / "rasa" / "spool.db"),
            "KEFU_CHANNEL_STATE_URL": self.channel_state_url,
            "WECHAT_TOKEN": self.wechat_token,
            "WECHAT_APP_ID": self.wechat_app_id,
            "WECHAT_APP_SECRET": self.wechat_app_secret,
            "WECHAT_ENCODING_AES_KEY": self.wechat_encoding_aes_key,
            "WECHAT_API_BASE_URL": self.wechat_api_base_url,
            "TELEGRAM_TOKEN": self.telegram_token,
            "TELEGRAM_SECRET_TOKEN": self.telegram_secret_token,
            "TELEGRAM_API_BASE_URL": self.telegram_api_base_url,
            "KEFU_ENV": self.env,
            "KEFU_CUSTOMER_SESSION_SECRET": self.customer_session_secret,
            "KEFU_SHOP_IDENTITY_SECRET": self.shop_identity_secret,
            "KEFU_REST_TOKEN": self.rest_token,
            "KEFU_ACTION_TOKEN": self.action_token,
            "KEFU_RASA_API_ALLOWED": self.rasa_api_allowed,
            "KEFU_MAX_JSON_BYTES": str(self.max_json_bytes),
        }


def _environment_name(field_name: str, alias: object) -> str:
    """The variable a field is read from: its alias, or `KEFU_<FIELD NAME>`."""
    return alias if isinstance(alias, str) else f"KEFU_{field_name.upper()}"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once on first use."""
    return Settings()
