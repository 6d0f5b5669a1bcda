"""Settings from the environment and `.env`; every field is documented in `.env.example`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LOCALES = ("kk", "ru", "en")
TOKEN_PATTERN = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{30,100}$")
WEBHOOK_SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what Telegram accepts as secret_token


class SettingsError(Exception):
    """A setting is missing or wrong; the message says what to do, in one sentence."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr
    telegram_api_base: str | None = None
    database_path: Path = Path("data/minevoice.sqlite3")
    default_locale: str = "ru"
    timezone: str = "Asia/Almaty"
    admin_ids: Annotated[frozenset[int], NoDecode] = Field(default_factory=frozenset)
    log_level: str = "INFO"
    reports_per_hour: int = Field(default=3, ge=1)
    digest_time: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    escalate_after_minutes: int = Field(default=30, ge=1)
    overdue_acknowledge_hours: int = Field(default=24, ge=1)
    overdue_resolve_days: int = Field(default=14, ge=1)
    # Announcements. Above 29/s Telegram needs paid broadcasts (allow_paid_broadcast, billed in Stars).
    broadcast_rate: int = Field(default=25, ge=1, le=1000)
    broadcast_breaker_sample: int = Field(default=50, ge=10)
    broadcast_breaker_share: float = Field(default=0.5, gt=0, lt=1)
    # Operations (issue 6).
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=1, le=65535)
    backup_dir: Path = Path("data/backups")
    backup_keep: int = Field(default=14, ge=1)
    backup_time: str = Field(default="03:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    retention_days: int = Field(default=365, ge=30)

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if not TOKEN_PATTERN.match(value.get_secret_value().strip()):
            raise ValueError("malformed")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        if value not in LOCALES:
            raise ValueError(f"must be one of {', '.join(LOCALES)}")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone") from exc
        return value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(int(part) for part in value.replace(" ", "").split(",") if part)
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value

    @model_validator(mode="before")
    @classmethod
    def _webhook_url_always_checked(cls, data: Any) -> Any:
        # A field's validator does not run for a value left at its default; naming WEBHOOK_URL
        # explicitly lets its validator say that MODE=webhook needs it.
        if isinstance(data, dict) and "webhook_url" not in data:
            return {**data, "webhook_url": None}
        return data

    @field_validator("webhook_url")
    @classmethod
    def _https_webhook(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = (value or "").strip() or None
        if value is None:
            if info.data.get("mode") == "webhook":
                raise PydanticCustomError(
                    "webhook_url", "missing: MODE=webhook needs the public https:// address Telegram sends updates to")
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise PydanticCustomError(
                "webhook_url", "must be an https:// address like https://bot.example.org/telegram, "
                               "because Telegram delivers updates only over HTTPS")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        secret = value.get_secret_value().strip() if value is not None else ""
        if not secret:
            return None  # generated at each start
        if not WEBHOOK_SECRET_PATTERN.match(secret):
            raise PydanticCustomError(
                "webhook_secret", "must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -, as Telegram requires")
        return SecretStr(secret)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


_ADVICE = {
    "bot_token": (
        "BOT_TOKEN is {problem}: create a bot with @BotFather in Telegram, "
        "then put its token in .env as BOT_TOKEN=123456789:AA... (see README.md)."
    ),
}


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning validation errors into one plain sentence for the operator."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "settings"
        missing = error["type"] == "missing" or not str(error.get("input") or "").strip()
        problem = "missing" if missing else "not a valid bot token"
        if field in _ADVICE:
            raise SettingsError(_ADVICE[field].format(problem=problem)) from None
        raise SettingsError(
            f"{field.upper()} is invalid ({error['msg']}); fix it in .env (see .env.example)."
        ) from None
