"""Process settings from the environment: a pure function over a mapping, plus instance secrets."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tipline.errors import ConfigError

PACKAGED_CONFIG = Path(__file__).resolve().parent / "defaults" / "example.toml"


@dataclass(frozen=True)
class Settings:
    """Everything a process needs that comes from its environment."""

    instance_path: Path
    config_path: Path
    database_url: str
    redis_url: str | None
    secret_key: str
    master_keys: tuple[tuple[str, bytes], ...] = field(repr=False)
    public_url: str = "http://127.0.0.1:5000"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = field(default=None, repr=False)
    twilio_api_base_url: str = "https://api.twilio.com"
    # Twilio webhook SharedKeys (key id -> secret), for webhooks a Twilio Webhook Rule signs
    # with one instead of the Auth Token (they carry X-Twilio-Webhooks-Signature-Settings)
    twilio_shared_keys: Mapping[str, str] = field(default_factory=dict, repr=False, hash=False)
    smtp_url: str | None = field(default=None, repr=False)
    mail_from: str = "tipline@localhost"
    log_level: str = "INFO"
    metrics_token: str | None = field(default=None, repr=False)
    # Set by `tipline dev` for its children only: the printed demo login may sign in without
    # a second factor. Refused with an https public URL, so a deployment cannot turn it on.
    dev_mode: bool = False
    # How many reverse proxies stand in front (each appends to X-Forwarded-For); staff sign-in
    # takes the client address from there, and nothing else reads an address.
    trusted_proxies: int = 0
    # Where tips taken while the database is down wait for it (`tipline.platform.spool`): on
    # this host's own disk, one folder per host. Default `<instance>/spool`.
    spool_dir: Path | None = None

    def __post_init__(self) -> None:
        # Fail closed: with only one of the two set, the app would run in console mode while
        # someone meant it to check Twilio's signatures, so an unsigned POST would pass.
        if (self.twilio_account_sid is None) != (self.twilio_auth_token is None):
            given, missing = (
                ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
                if self.twilio_auth_token is None
                else ("TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID")
            )
            raise ConfigError(
                f"{missing}: must be set when {given} is (set both for Twilio, or neither "
                "for console mode)"
            )

    @property
    def twilio_enabled(self) -> bool:
        return self.twilio_auth_token is not None


def parse_master_keys(
    raw: str, variable: str = "TIPLINE_MASTER_KEYS"
) -> tuple[tuple[str, bytes], ...]:
    """Parse `id:base64key,...`; each key must be 32 bytes and each id unique."""
    keys: list[tuple[str, bytes]] = []
    for n, item in enumerate(part.strip() for part in raw.split(",")):
        if not item:
            continue
        key_id, sep, b64 = item.partition(":")
        if not sep or not key_id or not key_id.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"{variable}: entry {n + 1} must look like id:base64key")
        try:
            key = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{variable}: key {key_id!r} is not valid base64") from None
        if len(key) != 32:
            raise ConfigError(f"{variable}: key {key_id!r} must be 32 bytes, not {len(key)}")
        if any(key_id == seen for seen, _ in keys):
            raise ConfigError(f"{variable}: key id {key_id!r} appears twice")
        keys.append((key_id, key))
    if not keys:
        raise ConfigError(f"{variable}: no keys given")
    return tuple(keys)


def new_master_key_entry(key_id: str) -> str:
    """A fresh `id:base64key` entry for TIPLINE_MASTER_KEYS."""
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def _instance_secret(instance: Path, name: str, make: str) -> str:
    """Read a secret file from the instance folder, creating it (mode 0600) on first use."""
    path = instance / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    instance.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(make + "\n")
    return make


def find_config(env: Mapping[str, str], cwd: Path) -> Path:
    """TIPLINE_CONFIG, else ./config/example.toml, else the copy inside the package."""
    if "TIPLINE_CONFIG" in env:
        path = Path(env["TIPLINE_CONFIG"])
        return path if path.is_absolute() else cwd / path
    local = cwd / "config" / "example.toml"
    return local if local.exists() else PACKAGED_CONFIG


def load_settings(env: Mapping[str, str], *, cwd: Path | None = None) -> Settings:
    """Build Settings from environment variables; secrets missing there come from `instance/`."""
    base = cwd or Path.cwd()
    instance = Path(env.get("TIPLINE_INSTANCE", base / "instance")).resolve()

    config_path = find_config(env, base)

    database_url = env.get("TIPLINE_DATABASE_URL") or f"sqlite:///{instance / 'tipline.db'}"
    database_url = normalize_database_url(database_url)

    if env.get("TIPLINE_MASTER_KEYS"):
        master_keys = parse_master_keys(env["TIPLINE_MASTER_KEYS"])
    else:
        raw = _instance_secret(instance, "master_keys", new_master_key_entry("dev1"))
        master_keys = parse_master_keys(raw, f"{instance / 'master_keys'}")

    secret_key = env.get("TIPLINE_SECRET_KEY") or _instance_secret(
        instance, "secret_key", secrets.token_urlsafe(48)
    )

    public_url = env.get("TIPLINE_PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/")
    if not public_url.startswith(("http://", "https://")):
        raise ConfigError("TIPLINE_PUBLIC_URL: must start with http:// or https://")

    level = env.get("TIPLINE_LOG_LEVEL", "INFO").upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError("TIPLINE_LOG_LEVEL: one of DEBUG, INFO, WARNING, ERROR")

    dev_mode = env.get("TIPLINE_DEV_MODE", "") == "1"
    if dev_mode and public_url.startswith("https://"):
        raise ConfigError(
            "TIPLINE_DEV_MODE: only for `tipline dev`, never with an https public URL"
        )
    proxies = env.get("TIPLINE_TRUSTED_PROXIES", "0")
    if not proxies.isdigit() or int(proxies) > 5:
        raise ConfigError("TIPLINE_TRUSTED_PROXIES: a number of proxies from 0 to 5")

    return Settings(
        instance_path=instance,
        config_path=config_path,
        database_url=database_url,
        redis_url=env.get("TIPLINE_REDIS_URL") or None,
        secret_key=secret_key,
        master_keys=master_keys,
        public_url=public_url,
        twilio_account_sid=env.get("TWILIO_ACCOUNT_SID") or None,
        twilio_auth_token=env.get("TWILIO_AUTH_TOKEN") or None,
        twilio_api_base_url=env.get("TWILIO_API_BASE_URL", "https://api.twilio.com").rstrip("/"),
        twilio_shared_keys=parse_shared_keys(env.get("TWILIO_WEBHOOK_SHARED_KEYS", "")),
        smtp_url=env.get("TIPLINE_SMTP_URL") or None,
        mail_from=env.get("TIPLINE_MAIL_FROM", "tipline@localhost"),
        log_level=level,
        metrics_token=env.get("TIPLINE_METRICS_TOKEN") or None,
        dev_mode=dev_mode,
        trusted_proxies=int(proxies),
        spool_dir=_spool_dir(env.get("TIPLINE_SPOOL_DIR"), instance, base),
    )


def _spool_dir(raw: str | None, instance: Path, base: Path) -> Path:
    if not raw:
        return instance / "spool"
    path = Path(raw)
    return (path if path.is_absolute() else base / path).resolve()


def parse_shared_keys(raw: str, variable: str = "TWILIO_WEBHOOK_SHARED_KEYS") -> dict[str, str]:
    """Parse `keyid:secret,...`: Twilio's SharedKey ids and the secrets Twilio returned.

    Several at once while a key is rotated: each webhook names the key it was signed with.
    """
    keys: dict[str, str] = {}
    for n, item in enumerate(part.strip() for part in raw.split(",")):
        if not item:
            continue
        key_id, sep, secret = (piece.strip() for piece in item.partition(":"))
        if not sep or not key_id or not secret:
            raise ConfigError(f"{variable}: entry {n + 1} must look like keyid:secret")
        if key_id in keys:
            raise ConfigError(f"{variable}: key id {key_id!r} appears twice")
        keys[key_id] = secret
    return keys


def normalize_database_url(url: str) -> str:
    """Let a plain `postgresql://` URL use the psycopg 3 driver the project installs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
