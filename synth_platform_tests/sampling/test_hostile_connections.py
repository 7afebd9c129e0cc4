"""Property-based attacks on what surrounds the query: where a URL really connects (multi-host URLs, hostaddr,
libpq environment variables), look-alike table names, privileged database roles and views with side effects.

Transport rules are tested on the decision `check_transport_security` makes before connecting: the remote
addresses drawn here (203.0.113.0/24, TEST-NET-3, and *.example) are never dialled. Everything else runs against the
real local PostgreSQL. Derandomized like test_hostile_input.py (SYNTH_HYPOTHESIS_EXPLORE=1 draws new inputs).
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from synth_platform.sampling import audit
from synth_platform.sampling.errors import SourceError
from synth_platform.sampling.privileges import SERVER_ROLES
from synth_platform.sampling.source import SampleRequest, check_identifier, read_sample
from synth_platform.sampling.transport import TLS_SSLMODES, TransportError, check_transport_security
from synth_platform_tests.conftest import admin_url_of, fresh_pg_database

from .test_hostile_input import HOSTILE

# ------------------------------------------------------------------------------------------- where a URL connects

LOCAL = ["localhost", "127.0.0.1", "127.8.9.10", "::1", "/var/run/postgresql", "/tmp"]
REMOTE = ["203.0.113.7", "203.0.113.250", "db.example", "replica.example", "2001:db8::5", "10.0.0.9"]
SSLMODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

hosts = st.lists(st.sampled_from(LOCAL + REMOTE), min_size=1, max_size=3)


@st.composite
def libpq_requests(draw):
    """A PostgreSQL URL plus libpq environment, drawn from every place libpq reads an address or a TLS mode."""
    netloc = draw(st.one_of(st.none(), st.lists(st.sampled_from(["localhost", "127.0.0.1", "203.0.113.7", "db.example"]), min_size=1, max_size=3)))
    host_params = draw(st.lists(hosts, max_size=2))  # ?host=a,b&host=c
    hostaddr = draw(st.one_of(st.none(), st.lists(st.sampled_from(["127.0.0.1", "::1", "203.0.113.9", "10.1.2.3"]), min_size=1, max_size=2)))
    url_sslmode = draw(st.one_of(st.none(), st.sampled_from(SSLMODES)))
    env = {}
    for key, values in (("PGHOST", LOCAL + REMOTE), ("PGHOSTADDR", ["127.0.0.1", "203.0.113.11"]), ("PGSSLMODE", SSLMODES)):
        if draw(st.booleans()):
            env[key] = draw(st.sampled_from(values))
    query = [("host", ",".join(h)) for h in host_params]
    if hostaddr is not None:
        query.append(("hostaddr", ",".join(hostaddr)))
    if url_sslmode is not None:
        query.append(("sslmode", url_sslmode))
    url = "postgresql+psycopg2://reader@" + (",".join(netloc) if netloc else "") + "/hospital"
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query)
    return url, env, netloc or [], [h for group in host_params for h in group], hostaddr, url_sslmode


def _is_local(address: str) -> bool:
    return address in LOCAL or address == ""


@settings(HOSTILE, max_examples=400)
@given(request=libpq_requests())
def test_the_tls_rule_decides_on_the_address_libpq_dials(request):
    """The reference model, from libpq's documentation: `hostaddr` (URL, else PGHOSTADDR) is what is dialled when
    given, else every host (all `host` parameters and the URL's hosts, else PGHOST), else the default socket; the TLS
    mode is the URL's `sslmode`, else PGSSLMODE, else prefer. Allowed exactly when every dialled address is local
    or the mode refuses plain text."""
    url, env, netloc, host_params, hostaddr, url_sslmode = request
    dialled = hostaddr or ([a.strip() for a in env["PGHOSTADDR"].split(",")] if "PGHOSTADDR" in env else None)
    if dialled is None:
        named = host_params + netloc
        dialled = named or ([env["PGHOST"]] if "PGHOST" in env else [""])
    mode = url_sslmode or env.get("PGSSLMODE", "prefer")
    expected_ok = all(_is_local(a) for a in dialled) or mode in TLS_SSLMODES
    try:
        check_transport_security(url, require_tls=True, environ=env)
        allowed = True
    except TransportError as refused:
        allowed = False
        assert "sslmode" in str(refused) and "reader" not in str(refused)
    assert allowed == expected_ok, (url, env, dialled, mode)


# ----------------------------------------------------------------------------------------------- look-alike names

HOMOGLYPHS = {  # from Unicode's confusables: Cyrillic, Greek, fullwidth, mathematical, APL, Cherokee, Lisu
    "a": "аαａ𝐚⍺", "e": "еεｅ𝐞", "o": "оοｏ𝐨", "p": "рρｐ", "c": "сϲｃ", "i": "іιｉ", "s": "ѕｓ", "t": "тｔ𝐭",
    "d": "ԁｄ", "l": "ӏｌ𝐥", "u": "υｕ", "n": "ոｎ", "v": "νｖ", "A": "АΑＡꓮ", "T": "ТΤＴꓔ",
}
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u3164", "\u115f", "\u00ad", "\u034f", "\ufe0f", "\u180e"]
TARGETS = ["visits", "patients", "adult", "Admissions", "Tally"]


@st.composite
def lookalikes(draw):
    """A real ASCII name with one or more letters swapped for a look-alike and/or an invisible character added."""
    name = list(draw(st.sampled_from(TARGETS)))
    swappable = [i for i, c in enumerate(name) if c in HOMOGLYPHS]
    for i in draw(st.lists(st.sampled_from(swappable), max_size=3, unique=True)):
        name[i] = draw(st.sampled_from(HOMOGLYPHS[name[i]]))
    for _ in range(draw(st.integers(0, 2))):
        name.insert(draw(st.integers(0, len(name))), draw(st.sampled_from(INVISIBLE)))
    text = "".join(name)
    if text.isascii():  # nothing was changed: force one look-alike
        i = swappable[0]
        text = text[:i] + HOMOGLYPHS[text[i]][0] + text[i + 1:]
    return text


@settings(HOSTILE, max_examples=250)
@given(name=lookalikes())
def test_look_alike_names_are_refused(name):
    with pytest.raises(SourceError, match=r"U\+[0-9A-F]{4}"):
        check_identifier("Table", name)


@pytest.fixture(scope="module")
def lookalike_database():
    """A database where the look-alike tables exist next to the real one, so a refusal is the only defence."""
    with fresh_pg_database() as url:
        with sa.create_engine(url).begin() as conn:
            conn.exec_driver_sql("CREATE TABLE visits AS SELECT g AS age, 'real' AS origin FROM generate_series(1, 40) g")
        yield url


@settings(HOSTILE, max_examples=40)
@given(name=lookalikes())
def test_an_existing_look_alike_table_is_never_read_and_the_audit_shows_its_code_points(lookalike_database, tmp_path_factory, name):
    engine = sa.create_engine(lookalike_database)
    quoted = engine.dialect.identifier_preparer.quote(name)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {quoted} AS SELECT g AS age, 'lookalike' AS origin FROM generate_series(1, 40) g")
    except sa.exc.DBAPIError:
        return  # PostgreSQL refuses this name itself (e.g. a NUL-like character): nothing to read
    finally:
        engine.dispose()
    audit_url = f"sqlite:///{tmp_path_factory.mktemp('lookalike') / 'audit.sqlite3'}"
    with pytest.raises(SourceError):
        read_sample(lookalike_database, SampleRequest(table=name), audit_url=audit_url)
    (record,) = audit.read_records(audit_url)
    assert record["outcome"] == "refused"
    assert all(f"U+{ord(c):04X}" in record["table_name"] for c in name if not c.isascii())


# ------------------------------------------------------------------------------------------- privileged roles

ROLE_GRANTS = {
    "superuser": 'ALTER ROLE "{role}" SUPERUSER',
    "createrole": 'ALTER ROLE "{role}" CREATEROLE',
    **{name: f'GRANT {name} TO "{{role}}"' for name in SERVER_ROLES},
    "superuser group": 'GRANT "{group}" TO "{role}"',
    "set role to superuser group": 'GRANT "{group}" TO "{role}"; ALTER ROLE "{role}" SET role = \'{group}\'',
    "server role through a group": 'GRANT "{plain_group}" TO "{role}"',
    "harmless": 'GRANT "{harmless_group}" TO "{role}"',
    "bypassrls": 'ALTER ROLE "{role}" BYPASSRLS',
}
HARMLESS = {"harmless", "bypassrls"}


@pytest.fixture(scope="module")
def role_database():
    """A database with table `visits`, a NOLOGIN superuser group, a group holding pg_read_server_files and a group
    holding nothing; all dropped at the end."""
    suffix = uuid.uuid4().hex[:8]
    groups = {"group": f"synth_test_su_{suffix}", "plain_group": f"synth_test_files_{suffix}", "harmless_group": f"synth_test_none_{suffix}"}
    with fresh_pg_database() as url:
        with sa.create_engine(url).begin() as conn:
            conn.exec_driver_sql("CREATE TABLE visits AS SELECT g AS age FROM generate_series(1, 40) g")
        admin = sa.create_engine(admin_url_of(url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE ROLE "{groups["group"]}" NOLOGIN SUPERUSER')
            conn.exec_driver_sql(f'CREATE ROLE "{groups["plain_group"]}" NOLOGIN IN ROLE pg_read_server_files')
            conn.exec_driver_sql(f'CREATE ROLE "{groups["harmless_group"]}" NOLOGIN')
        try:
            yield url, admin, groups
        finally:
            with admin.connect() as conn:
                for role in groups.values():
                    conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
            admin.dispose()


@settings(HOSTILE, max_examples=40)
@given(grants=st.lists(st.sampled_from(sorted(ROLE_GRANTS)), max_size=3, unique=True), allow=st.booleans())
def test_a_role_with_any_privileged_grant_is_refused_unless_allowed(role_database, tmp_path_factory, grants, allow):
    url, admin, groups = role_database
    role = f"synth_test_h{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
        conn.exec_driver_sql(f'GRANT SELECT ON visits TO "{role}"')
        for grant in grants:
            for statement in ROLE_GRANTS[grant].format(role=role, **groups).split("; "):
                conn.exec_driver_sql(statement)
    audit_url = f"sqlite:///{tmp_path_factory.mktemp('roles') / 'audit.sqlite3'}"
    privileged = bool(set(grants) - HARMLESS)
    try:
        request = SampleRequest(table="visits", allow_privileged_role=allow)
        reader = sa.make_url(url).set(username=role).render_as_string(hide_password=False)
        if privileged and not allow:
            with pytest.raises(SourceError, match="privileged role"):
                read_sample(reader, request, audit_url=audit_url)
        else:
            assert read_sample(reader, request, audit_url=audit_url).rows_returned == 40
        (record,) = audit.read_records(audit_url)
        if privileged and allow:
            assert "allowed by allow_privileged_role" in record["read_as"]
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')


# ----------------------------------------------------------------------------------------- views with side effects

@pytest.fixture(scope="module")
def view_database():
    """A database with table `visits` and an (unlogged) table `side_effects` that functions write into."""
    with fresh_pg_database() as url:
        with sa.create_engine(url).begin() as conn:
            conn.exec_driver_sql("CREATE TABLE visits AS SELECT g AS age FROM generate_series(1, 40) g")
            conn.exec_driver_sql("CREATE TABLE side_effects (at timestamptz DEFAULT now())")
        yield url


@settings(HOSTILE, max_examples=60)
@given(
    volatility=st.sampled_from(["VOLATILE", "STABLE", "IMMUTABLE"]),
    definer=st.booleans(),
    place=st.sampled_from(["where", "select list", "subquery", "view of a view", "view of a view of a view", "operator", "policy"]),
)
def test_a_relation_calling_a_function_that_could_write_is_refused_and_nothing_is_written(view_database, tmp_path_factory, volatility, definer, place):
    """A function reached from the relation read (anywhere: WHERE, select list, a subquery, a view it reads, an
    operator, a row-level-security policy) that is VOLATILE or SECURITY DEFINER is refused before the read; the
    others are read. Either way the side-effect table stays empty (the read-only transaction, and the refusal)."""
    tag = uuid.uuid4().hex[:8]
    fn = f"f_{tag}"
    body = "BEGIN INSERT INTO side_effects DEFAULT VALUES; RETURN true; END" if volatility == "VOLATILE" else "BEGIN RETURN $1 > 0; END"
    args = "" if volatility == "VOLATILE" else "integer"
    call = f"{fn}()" if volatility == "VOLATILE" else f"{fn}(age)"
    engine = sa.create_engine(view_database)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE FUNCTION {fn}({args}) RETURNS boolean LANGUAGE plpgsql {volatility} "
            f"{'SECURITY DEFINER' if definer else ''} AS $${body}$$"
        )
        relation = f"r_{tag}"
        if place == "where":
            conn.exec_driver_sql(f"CREATE VIEW {relation} AS SELECT * FROM visits WHERE {call}")
        elif place == "select list":
            conn.exec_driver_sql(f"CREATE VIEW {relation} AS SELECT age, {call} AS flag FROM visits")
        elif place == "subquery":
            conn.exec_driver_sql(f"CREATE VIEW {relation} AS SELECT * FROM (SELECT * FROM visits WHERE {call}) AS inner_rows")
        elif place.startswith("view of"):
            conn.exec_driver_sql(f"CREATE VIEW base_{tag} AS SELECT * FROM visits WHERE {call}")
            below = f"base_{tag}"
            for level in range(place.count("view of")):
                conn.exec_driver_sql(f"CREATE VIEW lvl{level}_{tag} AS SELECT * FROM {below}")
                below = f"lvl{level}_{tag}"
            relation = below
        elif place == "operator":  # the function behind a user-defined operator, in its own schema
            conn.exec_driver_sql(
                f"CREATE FUNCTION op_{tag}(integer, integer) RETURNS boolean LANGUAGE sql {volatility} "
                f"{'SECURITY DEFINER' if definer else ''} AS 'SELECT $1 = $2'"
            )
            conn.exec_driver_sql(f"CREATE SCHEMA ops_{tag}")
            conn.exec_driver_sql(f"CREATE OPERATOR ops_{tag}.=# (LEFTARG = integer, RIGHTARG = integer, FUNCTION = op_{tag})")
            conn.exec_driver_sql(f"CREATE VIEW {relation} AS SELECT * FROM visits WHERE age OPERATOR(ops_{tag}.=#) age")
        else:  # policy: read as a role the policy applies to (not the table owner)
            conn.exec_driver_sql(f"CREATE TABLE {relation} AS SELECT * FROM visits")
            conn.exec_driver_sql(f"ALTER TABLE {relation} ENABLE ROW LEVEL SECURITY")
            conn.exec_driver_sql(f"ALTER TABLE {relation} FORCE ROW LEVEL SECURITY")
            conn.exec_driver_sql(f"CREATE POLICY p_{tag} ON {relation} USING ({call})")
    engine.dispose()

    risky = volatility == "VOLATILE" or definer
    audit_url = f"sqlite:///{tmp_path_factory.mktemp('views') / 'audit.sqlite3'}"
    if risky:
        with pytest.raises(SourceError, match="would call functions that can have side effects"):
            read_sample(view_database, SampleRequest(table=relation), audit_url=audit_url)
    else:  # harmless functions: the relation is read
        assert read_sample(view_database, SampleRequest(table=relation), audit_url=audit_url).rows_returned == 40
    engine = sa.create_engine(view_database)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM side_effects").scalar_one() == 0
    engine.dispose()
