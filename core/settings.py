"""Typed settings, each read from a CLI flag, else an environment variable, else a default.

A settings class is a frozen dataclass whose fields are declared with `setting()`.
`load(cls, argv)` builds the argparse parser from the fields, so the flag, the env
var, the default and the help text live in one place; README's settings table is
checked against these classes by tests/core/test_settings.py.

A wrong value fails at start with a `SettingError` that names the flag and the env var.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import logging
import os
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from core.components import BROKER, DATABASE, PRODUCER, SPARK_JOBS
from core.contract import TOPIC

__all__ = [
    "REPO_ROOT",
    "DatabaseSettings",
    "KafkaSettings",
    "ListenSettings",
    "MetricsSettings",
    "ProgressSettings",
    "SettingError",
    "is_loopback",
    "load",
    "load_or_exit",
    "mask_url",
    "setting",
    "setting_fields",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
# Everything the embedded stack writes lives below this gitignored folder.
LOCAL_DIR = REPO_ROOT / ".local"

# What Kafka's clients (librdkafka and Java) accept; core.kafka builds their configurations.
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

Check = Callable[[typing.Any], str | None]
T = typing.TypeVar("T")


class SettingError(ValueError):
    """A setting has a value the program cannot run with."""


def setting(env: str, flag: str, default: typing.Any, help: str, check: Check | None = None) -> typing.Any:
    """Declare a dataclass field as a setting with its env var, flag, default and help."""
    meta = {"env": env, "flag": flag, "help": help, "check": check}
    return dataclasses.field(default=default, metadata=meta)


def at_least(minimum: float) -> Check:
    """A check that the value is >= minimum."""
    return lambda value: None if value >= minimum else f"must be >= {minimum:g}"


def one_of(*choices: str) -> Check:
    """A check that the value is one of the choices."""
    return lambda value: None if value in choices else f"must be one of {', '.join(choices)}"


def _non_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _readable_file_or_empty(value: str) -> str | None:
    if value and not os.access(value, os.R_OK):
        return "must be a readable file (or empty)"
    return None


def _postgres_url(value: str) -> str | None:
    if urlsplit(value).scheme not in ("postgresql", "postgres"):
        return "must be a postgresql:// URL"
    return None


@dataclass(frozen=True, kw_only=True)
class KafkaSettings:
    """Where the tickets topic lives."""

    bootstrap_servers: str = setting(
        "KAFKA_BOOTSTRAP_SERVERS",
        "--bootstrap-servers",
        f"127.0.0.1:{BROKER.port}",
        "Kafka bootstrap servers (host:port, comma-separated)",
        _non_empty,
    )
    topic: str = setting("TICKETS_TOPIC", "--topic", TOPIC, "Topic of the tickets", _non_empty)
    kafka_security_protocol: str = setting(
        "KAFKA_SECURITY_PROTOCOL",
        "--kafka-security-protocol",
        "PLAINTEXT",
        "How the clients talk to the brokers: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL"
        " (TLS and a user's password); SASL's password is read from KAFKA_SASL_PASSWORD",
        one_of(*KAFKA_SECURITY_PROTOCOLS),
    )
    kafka_sasl_mechanism: str = setting(
        "KAFKA_SASL_MECHANISM",
        "--kafka-sasl-mechanism",
        "SCRAM-SHA-512",
        "SASL mechanism of the user, with a SASL_* protocol: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
        one_of(*KAFKA_SASL_MECHANISMS),
    )
    kafka_sasl_username: str = setting(
        "KAFKA_SASL_USERNAME",
        "--kafka-sasl-username",
        "",
        "SASL user, required with a SASL_* protocol",
    )
    kafka_ssl_ca_file: str = setting(
        "KAFKA_SSL_CA_FILE",
        "--kafka-ssl-ca-file",
        "",
        "PEM file of the CA(s) that signed the brokers' certificates, with SSL or SASL_SSL;"
        " empty = the system's CAs",
        _readable_file_or_empty,
    )

    def check_environment(self, environ: Mapping[str, str]) -> None:
        """A SASL protocol needs a user, and its password in KAFKA_SASL_PASSWORD."""
        if not self.kafka_security_protocol.startswith("SASL_"):
            return
        for name, given in (
            ("--kafka-sasl-username / KAFKA_SASL_USERNAME", self.kafka_sasl_username),
            ("KAFKA_SASL_PASSWORD", environ.get("KAFKA_SASL_PASSWORD", "")),
        ):
            if not given:
                protocol = f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
                raise SettingError(f"invalid setting {name}: required with {protocol}")


@dataclass(frozen=True, kw_only=True)
class DatabaseSettings:
    """Where the tables live. The password comes from PGPASSWORD (or ~/.pgpass), not a flag."""

    database_url: str = setting(
        "DATABASE_URL",
        "--database-url",
        f"postgresql://tickets@127.0.0.1:{DATABASE.port}/tickets",
        "PostgreSQL connection URL; the password is read from PGPASSWORD",
        _postgres_url,
    )
    statement_timeout_seconds: float = setting(
        "DATABASE_STATEMENT_TIMEOUT_SECONDS",
        "--statement-timeout-seconds",
        60.0,
        "A statement blocked longer than this (a lock, a stalled server) is cancelled, and the"
        " jobs retry it until DATABASE_RETRY_SECONDS; 0 = never",
        at_least(0),
    )


@dataclass(frozen=True, kw_only=True)
class ProgressSettings:
    """How often a long-running process reports its counts and rates."""

    progress_interval_seconds: float = setting(
        "PROGRESS_INTERVAL_SECONDS",
        "--progress-interval-seconds",
        5.0,
        "Seconds between progress lines",
        at_least(0.1),
    )


@dataclass(frozen=True, kw_only=True)
class ListenSettings:
    """Which address a process's listeners bind to."""

    bind_host: str = setting(
        "BIND_HOST",
        "--bind-host",
        "127.0.0.1",
        "Address that every listener of the process binds to: metrics, dashboard, Spark's"
        " driver, block manager and UI. Loopback by default; the chart's pods set 0.0.0.0",
        _non_empty,
    )


@dataclass(frozen=True, kw_only=True)
class MetricsSettings(ListenSettings):
    """Where a component serves its Prometheus metrics."""

    metrics_port: int = setting(
        "METRICS_PORT",
        "--metrics-port",
        0,
        "Port of the Prometheus /metrics endpoint; 0 = the component's default ("
        + ", ".join(f"{c.name} {c.metrics_port}" for c in (PRODUCER, *SPARK_JOBS))
        + "), -1 = none",
        at_least(-1),
    )


def setting_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of a settings class that are settings (declared with `setting()`)."""
    return [f for f in dataclasses.fields(cls) if "env" in f.metadata]


def load(
    cls: type[T],
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    prog: str | None = None,
    description: str | None = None,
) -> T:
    """Build `cls` from flags, then env vars, then defaults; raise SettingError on a bad value.

    An unknown flag or a malformed number exits with argparse's usage message (status 2).
    """
    environ = os.environ if environ is None else environ
    argv = sys.argv[1:] if argv is None else argv
    hints = typing.get_type_hints(cls)
    parser = argparse.ArgumentParser(prog=prog, description=description or cls.__doc__, allow_abbrev=False)
    for f in setting_fields(cls):
        parser.add_argument(
            f.metadata["flag"],
            dest=f.name,
            default=None,
            help=f"{f.metadata['help']} (env {f.metadata['env']}, default {f.default!r})",
        )
    given = vars(parser.parse_args(list(argv)))
    values = {}
    for f in setting_fields(cls):
        raw = given[f.name]
        source = f.metadata["flag"]
        if raw is None and f.metadata["env"] in environ:
            raw, source = environ[f.metadata["env"]], f.metadata["env"]
        name = f"{f.metadata['flag']} / {f.metadata['env']}"
        value = f.default if raw is None else _convert(raw, hints[f.name], name, source)
        check = f.metadata["check"]
        problem = check(value) if check else None
        if problem:
            raise SettingError(f"invalid setting {name}: {problem} (got {value!r})")
        values[f.name] = value
    loaded = cls(**values)
    # A settings class may check what only the environment holds (a password), once loaded.
    if hasattr(loaded, "check_environment"):
        loaded.check_environment(environ)
    return loaded


def load_or_exit(cls: type[T], argv: Sequence[str] | None, prog: str, logger: logging.Logger) -> T:
    """`load` for a program's main: a wrong setting is logged, naming it, and the program exits 2."""
    try:
        return load(cls, argv, prog=prog)
    except SettingError as e:
        logger.error("%s", e)
        raise SystemExit(2) from None


def _convert(raw: str, kind: type, name: str, source: str) -> typing.Any:
    try:
        if kind is bool:
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes")
        return kind(raw)
    except ValueError:
        raise SettingError(
            f"invalid setting {name}: expected {kind.__name__}, got {raw!r} from {source}"
        ) from None


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, safe to print: the one before the host, and
    any `password` query parameter (libpq takes one there too, its name percent-encoded or not)."""
    # libpq knows no fragment: in "?password=a#b" the password is "a#b".
    parts = urlsplit(url, allow_fragments=False)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = "&".join(_mask_parameter(parameter) for parameter in parts.query.split("&"))
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _mask_parameter(parameter: str) -> str:
    """`password=...` as `password=***`; any other query parameter as it is."""
    name, equals, _ = parameter.partition("=")
    if equals and unquote(name).strip().lower() == "password":
        return f"{name}=***"
    return parameter
