"""Which database driver a URL gets. Pure logic: no Dagster here, and nothing is connected.

SQLAlchemy 2.1 reads a URL without a driver (`postgresql://…`) as `postgresql+psycopg` (psycopg 3), and `postgres://`
(the scheme libpq, Heroku and many tools write) not at all, while the platform's lock installs psycopg2 only: such
URLs failed with `ModuleNotFoundError: No module named 'psycopg'`. `with_installed_driver` gives a driverless
PostgreSQL URL the installed driver (psycopg2 first) and keeps an explicit driver that is installed; an explicit
driver that is not (`postgresql+psycopg://`, `postgresql+pg8000://`) or that is asynchronous (`postgresql+asyncpg://`:
the platform reads synchronously) is refused with a `SourceError` naming the installed alternative. URLs of other
databases are checked the same way: a scheme SQLAlchemy does not know, or whose driver module is missing, is
refused with a clear message instead of a traceback from the import.

Only the scheme (the text before `://`) is rewritten: user, password, host and query stay exactly as written.
"""

from __future__ import annotations

import importlib.util
import re

import sqlalchemy as sa

from synth_platform.sampling.errors import SourceError

POSTGRESQL_SCHEMES = ("postgresql", "postgres")
# PostgreSQL drivers SQLAlchemy knows, in the order the platform prefers them, and the module each one imports.
POSTGRESQL_DRIVERS = {"psycopg2": "psycopg2", "psycopg": "psycopg", "pg8000": "pg8000", "psycopg2cffi": "psycopg2cffi"}
ASYNC_DRIVERS = frozenset({"asyncpg", "psycopg_async", "aiosqlite", "aiomysql", "asyncmy", "aioodbc"})
_SCHEME = re.compile(r"^(?P<scheme>[\w+]+)://")


def installed_postgresql_drivers() -> list[str]:
    """The PostgreSQL drivers whose module can be imported here, preferred first."""
    return [driver for driver, module in POSTGRESQL_DRIVERS.items() if importlib.util.find_spec(module) is not None]


def _with_scheme(url: str, scheme: str) -> str:
    return _SCHEME.sub(lambda _: f"{scheme}://", url, count=1)


def with_installed_driver(url: str) -> str:
    """`url` with a driver that is installed: `postgresql://` and `postgres://` (no driver) become
    `postgresql+<installed driver>://` (psycopg2 where installed), `postgres+psycopg2://` becomes
    `postgresql+psycopg2://`, any other URL is returned as written. A driver that is not installed, an async
    driver, or a scheme SQLAlchemy does not know raise `SourceError` (naming the scheme and what to write instead,
    never the rest of the URL). Text that is not a URL at all is returned unchanged, for the caller's own error."""
    match = _SCHEME.match(url) if isinstance(url, str) else None
    if match is None:
        return url
    scheme = match.group("scheme")
    backend, _, driver = scheme.partition("+")
    if backend.lower() in POSTGRESQL_SCHEMES:
        installed = installed_postgresql_drivers()
        alternatives = ", ".join(f"postgresql+{d}://" for d in installed) or "none: install psycopg2"
        if driver.lower() in ASYNC_DRIVERS:
            raise SourceError(
                f"The database URL's scheme {scheme + '://'!r} names the asynchronous driver {driver!r}; the platform reads "
                f"with a synchronous driver. Write the URL as {alternatives} (installed) or postgresql://."
            )
        if not driver:
            if not installed:
                raise SourceError(
                    f"No PostgreSQL driver is installed for the URL scheme {scheme + '://'!r}: install psycopg2 (the "
                    "platform's lock file pins psycopg2-binary)."
                )
            driver = installed[0]
        elif driver not in installed:
            raise SourceError(
                f"The database URL's scheme {scheme + '://'!r} names the PostgreSQL driver {driver!r}, which is not "
                f"installed. Installed: {alternatives}; write the URL with that scheme, or postgresql:// for the "
                "default."
            )
        wanted = f"postgresql+{driver}"
        return url if scheme == wanted else _with_scheme(url, wanted)
    if driver.lower() in ASYNC_DRIVERS:
        raise SourceError(
            f"The database URL's scheme {scheme + '://'!r} names the asynchronous driver {driver!r}; the platform reads "
            f"with a synchronous driver: write {backend}:// or {backend}+<a synchronous driver>://."
        )
    try:
        dialect = sa.make_url(url).get_dialect()
    except sa.exc.NoSuchModuleError:
        raise SourceError(
            f"The database URL's scheme {scheme + '://'!r} is not one SQLAlchemy knows: write e.g. postgresql:// or "
            "sqlite:///path."
        ) from None
    except Exception:  # noqa: BLE001 - an unparseable URL: left for the caller's own (masked) error
        return url
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise SourceError(
            f"The driver module {exc.name!r} for the URL scheme {scheme + '://'!r} is not installed: install it, or "
            "read from a database whose driver is (PostgreSQL through psycopg2, SQLite)."
        ) from None
    return url
