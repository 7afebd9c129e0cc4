"""Where a database URL really connects to, and whether the connection must be encrypted. Pure logic: decides
before any connection is made, and never connects.

libpq takes the address it dials from more places than the URL's host: every `host` parameter (several, or a
comma-separated list: multi-host failover), `hostaddr` (the address actually dialled, whatever `host` says),
the environment (`PGHOST`, `PGHOSTADDR`, `PGSSLMODE` for whatever the URL leaves out) and a connection service
(`service=` or `PGSERVICE`, looked up in `PGSERVICEFILE` or `~/.pg_service.conf`, then `PGSYSCONFDIR/pg_service.conf`)
which can set host, hostaddr and sslmode too. `connection_plan` resolves all of them the way libpq does; a
service it cannot find is refused, never guessed.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from synth_platform.sampling.errors import SourceError

TLS_SSLMODES = ("require", "verify-ca", "verify-full")  # libpq sslmode values that refuse plain-text connections
MYSQL_TLS_MODES = ("REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")


class TransportError(SourceError):
    """The connection would not be protected, or where it goes cannot be told; the message says what to change."""


def is_local_host(host: str | None) -> bool:
    """No host (the default Unix socket), a socket directory, `localhost` or a loopback address."""
    if not host or host.startswith("/") or host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _values(query: Mapping, key: str) -> list[str]:
    value = query.get(key)
    if value is None:
        return []
    items = value if isinstance(value, tuple) else (value,)
    return [part.strip() for item in items for part in str(item).split(",")]


def _service_entries(name: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The parameters of connection service `name`, from the files libpq reads (user file first)."""
    files = []
    if environ.get("PGSERVICEFILE"):
        files.append(Path(environ["PGSERVICEFILE"]))
    else:
        files.append(Path(environ.get("HOME", str(Path.home()))) / ".pg_service.conf")
    if environ.get("PGSYSCONFDIR"):
        files.append(Path(environ["PGSYSCONFDIR"]) / "pg_service.conf")
    for path in files:
        if not path.is_file():
            continue
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            raise TransportError(f"The connection service file {path} cannot be read; fix it or name the host in the URL.") from None
        if parser.has_section(name):
            return {key.lower(): value.strip() for key, value in parser.items(name)}
    raise TransportError(
        f"The source URL names the connection service {name!r}, which is in no service file libpq would read "
        f"({', '.join(str(p) for p in files)}): the address it connects to cannot be checked. Name the host in the URL."
    )


@dataclass(frozen=True)
class ConnectionPlan:
    """What libpq will dial: `addresses` (hostaddr when given, else host names), and the TLS mode(s) it will use."""

    addresses: tuple[str, ...]
    sslmodes: tuple[str, ...]

    @property
    def local(self) -> bool:
        return all(is_local_host(address) for address in self.addresses)

    @property
    def encrypted(self) -> bool:
        return bool(self.sslmodes) and all(mode in TLS_SSLMODES for mode in self.sslmodes)

    @property
    def remote_addresses(self) -> list[str]:
        return [address for address in self.addresses if not is_local_host(address)]


def postgres_connection_plan(parsed: sa.URL, environ: Mapping[str, str]) -> ConnectionPlan:
    query = dict(parsed.query)
    service_name = (_values(query, "service") or [environ.get("PGSERVICE", "")])[0]
    service = _service_entries(service_name, environ) if service_name else {}

    def parameter(key: str, env: str) -> list[str]:  # URL, then the service, then the environment (libpq's order)
        url_host = parsed.host.rsplit("@", 1)[-1] if parsed.host else ""  # a raw `@` in the password is not the host
        url_hosts = [h.strip() for h in url_host.split(",") if h.strip()]  # a multi-host netloc: h1,h2
        given = _values(query, key) + (url_hosts if key == "host" else [])
        if given:
            return given
        if key in service:
            return [part.strip() for part in service[key].split(",")]
        return [part.strip() for part in environ.get(env, "").split(",") if part.strip()]

    hostaddrs = parameter("hostaddr", "PGHOSTADDR")
    hosts = parameter("host", "PGHOST")
    addresses = tuple(hostaddrs) if hostaddrs else tuple(hosts) or ("",)  # nothing: the default Unix socket
    sslmodes = tuple(_values(query, "sslmode")) or ((service["sslmode"],) if "sslmode" in service else ()) or (
        (environ["PGSSLMODE"],) if environ.get("PGSSLMODE") else ())
    return ConnectionPlan(addresses, sslmodes)


def check_transport_security(url: str, require_tls: bool = True, environ: Mapping[str, str] | None = None) -> None:
    """Refuse a plain-text connection to a database on another machine, deciding on the address the driver will
    really dial (see the module docstring); never connects.

    All addresses local (Unix socket, localhost, loopback): nothing needed. Otherwise, unless `require_tls=False`:
    PostgreSQL needs `sslmode=require`, `verify-ca` or `verify-full` (URL, service or `PGSSLMODE`); MySQL / MariaDB
    need `ssl_mode` REQUIRED / VERIFY_CA / VERIFY_IDENTITY or an `ssl_ca`; other dialects cannot be checked and are
    refused."""
    if not require_tls:
        return
    environ = os.environ if environ is None else environ
    try:
        parsed = sa.make_url(url)
    except Exception:  # noqa: BLE001
        raise TransportError("The source database URL cannot be parsed; expected dialect+driver://user@host/database.") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return
    if backend == "postgresql":
        plan = postgres_connection_plan(parsed, environ)
        if plan.local or plan.encrypted:
            return
        mode = ", ".join(plan.sslmodes) or "unset"
        raise TransportError(
            f"The source database at {', '.join(plan.remote_addresses)} is not local (from the URL's host / hostaddr, "
            f"a connection service or PGHOST / PGHOSTADDR) and the connection does not require TLS (sslmode={mode}): "
            "add ?sslmode=verify-full (or require) to the URL, or set require_tls=False on the source_database "
            "resource if the connection is protected another way (e.g. an SSH tunnel)."
        )
    query = {k: (v[-1] if isinstance(v, tuple) else v) for k, v in parsed.query.items()}
    hosts = _values(parsed.query, "host") + ([parsed.host.rsplit("@", 1)[-1]] if parsed.host else []) or [""]
    if all(is_local_host(h) for h in hosts):
        return
    shown = ", ".join(h for h in hosts if not is_local_host(h))
    if backend in ("mysql", "mariadb"):
        if str(query.get("ssl_mode", "")).upper() in MYSQL_TLS_MODES or query.get("ssl_ca"):
            return
        raise TransportError(
            f"The source database on {shown} is not local and its URL does not require TLS: add ?ssl_mode=VERIFY_IDENTITY "
            "(mysqlclient) or ?ssl_ca=/path/to/ca.pem (PyMySQL), or set require_tls=False on the source_database resource."
        )
    raise TransportError(
        f"The source database on {shown} is not local and TLS cannot be verified for {backend!r} URLs: make sure the "
        "connection is encrypted, then set require_tls=False on the source_database resource."
    )
