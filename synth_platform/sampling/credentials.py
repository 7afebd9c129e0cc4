"""Database URLs as they may be shown to people, and the secrets they carry. Pure logic: no Dagster here.

A URL can carry a credential in more places than its userinfo: SQLAlchemy and libpq also take `?password=`,
`?sslpassword=`, `?passfile=` (a path that says where the secrets are), and a raw `@` inside a password
(`user:sec@ret@host`) makes SQLAlchemy read the password as `sec` and the host as `ret@host`, so masking the
parsed password alone would still show `ret`. Every place that shows or stores a URL goes through `mask_url`, and
every message or record that may quote one through `scrub`.
"""

from __future__ import annotations

from urllib.parse import quote, quote_plus

import sqlalchemy as sa

MASK = "***"
UNPARSEABLE = "<unparseable database URL>"
# Query parameters that hold a credential (or say where one is), as SQLAlchemy dialects and libpq accept them.
CREDENTIAL_KEYS = frozenset({
    "password", "passwd", "pwd", "sslpassword", "passfile", "secret", "token", "access_token", "api_key", "apikey",
    "private_key", "private_key_passphrase", "sslkey",
})


def _parts(url: str) -> tuple[sa.URL, str | None, str | None]:
    """The parsed URL, the whole password (a raw `@` in it put back together) and the real host."""
    parsed = sa.make_url(url)
    password, host = parsed.password, parsed.host
    if host and "@" in host:  # `user:sec@ret@host`: SQLAlchemy stops the password at the first `@`
        tail, host = host.rsplit("@", 1)
        password = f"{password or ''}@{tail}"
    return parsed, (str(password) if password is not None else None), host


def url_secrets(url: str) -> list[str]:
    """Every secret `url` carries, longest first, as written and URL-encoded: the password and the values of
    credential query parameters."""
    try:
        parsed, password, _ = _parts(url)
    except Exception:  # noqa: BLE001 - nothing parseable: the whole text is the secret
        return [url] if url else []
    found = {password} if password else set()
    if password and "@" in password:  # a raw `@`: SQLAlchemy took the tail for part of the host, so it may be quoted alone
        found.update(part for part in password.split("@") if len(part) >= 4)
    for key, value in parsed.query.items():
        if key.lower() in CREDENTIAL_KEYS:
            found.update(value if isinstance(value, tuple) else (value,))
    encoded = {form for secret in found for form in (quote(secret, safe=""), quote_plus(secret))}
    return sorted((s for s in found | encoded if s), key=len, reverse=True)


def mask_url(url: str) -> str:
    """The URL as it may be shown: its password and every credential query value replaced by ***."""
    try:
        parsed, password, host = _parts(url)
        query = {
            key: (MASK if key.lower() in CREDENTIAL_KEYS else value) for key, value in parsed.query.items()
        }
        shown = parsed.set(host=host, password=MASK if password else None, query=query)
        text = shown.render_as_string(hide_password=False)
    except Exception:  # noqa: BLE001 - an unparseable URL is shown as nothing at all rather than leaked
        return UNPARSEABLE
    for encoded in {quote(MASK, safe=""), quote_plus(MASK)} - {MASK}:
        text = text.replace(encoded, MASK)
    for secret in url_secrets(url):  # belt and braces: no secret survives rendering in any form
        text = text.replace(secret, MASK)
    return text


def connectable_url(url: str) -> str:
    """`url` as the driver must receive it: a raw `@` in the password (`user:sec@ret@host`, which SQLAlchemy would
    read as password `sec` on host `ret@host`, and then look that host up) percent-encoded, so the password and the
    host are the ones written. Any other URL is returned as it is."""
    try:
        parsed, password, host = _parts(url)
    except Exception:  # noqa: BLE001 - unparseable: left for the caller's own error
        return url
    if parsed.host == host:
        return url
    return parsed.set(host=host, password=password).render_as_string(hide_password=False)


def scrub(message: str, *urls: str) -> str:
    """`message` with each URL shown masked and every secret they carry replaced by ***."""
    for url in urls:
        if not url:
            continue
        message = message.replace(url, mask_url(url))
        for secret in url_secrets(url):
            message = message.replace(secret, MASK)
    return message
