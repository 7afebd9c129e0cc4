"""The TLS rule decides on the address libpq will really dial (hostaddr, every host, the libpq environment, service
files), never by connecting; every credential form a URL can carry is masked wherever a URL is shown; noise bounds
that overflow are refused before the read. Each case here was let through before its fix."""

import math

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from synth_platform.sampling import audit
from synth_platform.sampling.credentials import mask_url, scrub, url_secrets
from synth_platform.sampling.noise import NoiseBound, NoiseError, NoisePlan
from synth_platform.sampling.source import SampleRequest, SourceError, read_sample
from synth_platform.sampling.transport import check_transport_security
from synth_platform.tuning.memory import _masked

REMOTE_IP = "203.0.113.7"  # TEST-NET-3 (RFC 5737): never routed; the rule is checked before any connection
REMOTE_NAME = "db.hospital.example"  # .example (RFC 2606): never resolves


@pytest.mark.parametrize(
    ("url", "environ"),
    [
        (f"postgresql+psycopg2://u@localhost/db?hostaddr={REMOTE_IP}", {}),  # hostaddr wins over host
        (f"postgresql+psycopg2://u@/db?host=localhost&host={REMOTE_NAME}", {}),  # a repeated host: every one counts
        (f"postgresql+psycopg2://u@/db?host={REMOTE_NAME}&host=localhost", {}),  # (the old rule read the last only)
        ("postgresql+psycopg2://u@/db", {"PGHOST": REMOTE_NAME}),  # no host in the URL: libpq takes PGHOST
        ("postgresql+psycopg2://u@/db", {"PGHOSTADDR": REMOTE_IP}),
        ("postgresql+psycopg2://u@localhost/db", {"PGHOSTADDR": REMOTE_IP}),  # PGHOSTADDR fills the URL's hostaddr
        (f"postgresql+psycopg2://u@localhost/db?hostaddr=127.0.0.1,{REMOTE_IP}", {}),  # multi-host hostaddr
    ],
)
def test_the_tls_rule_decides_on_the_address_libpq_will_dial(url, environ):
    with pytest.raises(SourceError, match="not local"):
        check_transport_security(url, environ=environ)
    check_transport_security(url + ("&" if "?" in url else "?") + "sslmode=verify-full", environ=environ)
    check_transport_security(url, require_tls=False, environ=environ)


@pytest.mark.parametrize(
    ("url", "environ"),
    [
        ("postgresql+psycopg2://u@localhost/db", {"PGHOST": REMOTE_NAME}),  # the URL's host wins over PGHOST
        ("postgresql+psycopg2://u@/db", {}),  # the default Unix socket
        ("postgresql+psycopg2://u@/db?host=/var/run/postgresql", {}),
        ("postgresql+psycopg2://u@db/x?hostaddr=127.0.0.1", {}),  # a name, but the dialled address is loopback
        ("postgresql+psycopg2://u@[::1]:5432/db", {}),
    ],
)
def test_local_connections_need_nothing(url, environ):
    check_transport_security(url, environ=environ)


def test_service_files_are_read_as_libpq_reads_them_and_an_unknown_service_is_refused(tmp_path):
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[prod]\nhost={REMOTE_NAME}\ndbname=emr\n\n[prod_tls]\nhost={REMOTE_NAME}\nsslmode=verify-full\n"
                        "[local]\nhost=127.0.0.1\n")
    environ = {"PGSERVICEFILE": str(services)}
    with pytest.raises(SourceError, match="not local"):
        check_transport_security("postgresql+psycopg2://u@/?service=prod", environ=environ)
    with pytest.raises(SourceError, match="not local"):
        check_transport_security("postgresql+psycopg2://u@/", environ={**environ, "PGSERVICE": "prod"})
    check_transport_security("postgresql+psycopg2://u@/?service=prod_tls", environ=environ)
    check_transport_security("postgresql+psycopg2://u@/?service=local", environ=environ)
    with pytest.raises(SourceError, match="service 'nowhere'.*cannot be checked"):
        check_transport_security("postgresql+psycopg2://u@/?service=nowhere", environ=environ)


@pytest.mark.parametrize(
    ("url", "secret", "shown"),
    [
        ("postgresql+psycopg2://reader@127.0.0.1/emr?password=hunter2-secret", "hunter2-secret",
         "postgresql+psycopg2://reader@127.0.0.1/emr?password=***"),
        ("postgresql+psycopg2://reader:s3c@r3tTail@db.example.org/emr", "s3c@r3tTail",
         "postgresql+psycopg2://reader:***@db.example.org/emr"),
        ("postgresql+psycopg2://reader:pa%40ss%2Fword@127.0.0.1/emr", "pa@ss/word", "postgresql+psycopg2://reader:***@127.0.0.1/emr"),
        ("postgresql+psycopg2://reader@127.0.0.1/emr?passfile=/home/reader/.pgpass-7", "/home/reader/.pgpass-7",
         "postgresql+psycopg2://reader@127.0.0.1/emr?passfile=***"),
        ("postgresql+psycopg2://reader@127.0.0.1/emr?sslpassword=keypass-9&sslmode=require", "keypass-9",
         "postgresql+psycopg2://reader@127.0.0.1/emr?sslmode=require&sslpassword=***"),
    ],
)
def test_every_credential_form_is_masked(url, secret, shown):
    assert mask_url(url) == shown
    assert secret in url_secrets(url) or secret.replace("@", "%40").replace("/", "%2F") in url
    for part in secret.split("@"):  # a raw `@`: SQLAlchemy reads the tail as part of the host, never shown
        assert part not in mask_url(url)
    message = f"could not connect to {url}: password {secret} rejected, {secret.split('@')[-1]}"
    assert secret not in scrub(message, url) and "***" in scrub(message, url)
    assert secret not in _masked(url)  # the tuning memory's stored form


@settings(max_examples=150, deadline=None, derandomize=True)
@given(password=st.text(alphabet=st.characters(codec="ascii", exclude_categories=("Cc",)), min_size=6, max_size=24))
def test_no_password_survives_masking_in_any_position(password):
    """Any printable password, raw in the userinfo or as a query parameter: no 6+-character run of it is shown."""
    from urllib.parse import quote

    for url in (f"postgresql+psycopg2://u:{password}@127.0.0.1/db", f"postgresql+psycopg2://u@127.0.0.1/db?password={quote(password)}"):
        shown = mask_url(url)
        if shown == "<unparseable database URL>":
            continue
        assert password not in shown and quote(password, safe="") not in shown


def test_a_query_password_never_reaches_the_sample_the_audit_or_an_error(tmp_path):
    """Through a real read on the local PostgreSQL (trust auth ignores the password) and a refused one."""
    from synth_platform_tests.conftest import fresh_pg_database

    secret = "hunter2-query-secret"
    audit_url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    with fresh_pg_database() as url:
        pd.DataFrame({"age": range(40), "ward": ["a", "b"] * 20}).to_sql("visits", sa.create_engine(url), index=False)
        with_password = url + f"?password={secret}"
        sample = read_sample(with_password, SampleRequest(table="visits"), audit_url=audit_url)
        with pytest.raises(SourceError) as refused:
            read_sample(with_password, SampleRequest(table="nope"), audit_url=audit_url)
    remote = f"postgresql+psycopg2://reader:s3c@{secret}@{REMOTE_NAME}/emr"  # refused before any connection
    with pytest.raises(SourceError, match="not local") as plain_text:
        read_sample(remote, SampleRequest(table="visits"), audit_url=audit_url)
    shown = str(sample.source) + str(refused.value) + str(plain_text.value) + str(audit.read_records(audit_url))
    assert secret not in shown and "***" in sample.source


def test_noise_bounds_that_overflow_are_refused():
    with pytest.raises(NoiseError, match="width overflows"):
        NoisePlan(1.0, (NoiseBound("income", -1e308, 1e308),)).validate()
    with pytest.raises(NoiseError, match="Laplace scale"):
        NoisePlan(1e-300, (NoiseBound("income", 0.0, 1e10),)).validate()
    assert math.isfinite(NoisePlan(1.0, (NoiseBound("income", 0.0, 1e6),)).scale(NoiseBound("income", 0.0, 1e6)))


def test_noise_bounds_beyond_an_integer_column_are_refused_before_the_read(tmp_path):
    """[0, 1e30] on an INTEGER column turned every value into int64's minimum; now refused, audited, nothing read."""
    from synth_platform_tests.conftest import fresh_pg_database

    audit_url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    with fresh_pg_database() as url:
        with sa.create_engine(url).begin() as conn:
            conn.exec_driver_sql("CREATE TABLE visits (age INTEGER, days SMALLINT, ward TEXT)")
            conn.exec_driver_sql("INSERT INTO visits SELECT mod(g, 90), mod(g, 30), 'a' FROM generate_series(1, 50) g")
        for column, upper in (("age", 1e30), ("days", 40_000)):
            request = SampleRequest(table="visits", noise_epsilon=1.0, noise_bounds=({"column": column, "lower": 0, "upper": upper},))
            with pytest.raises(SourceError, match=f"integer column '{column}'.*beyond what the column holds"):
                read_sample(url, request, audit_url=audit_url)
        ok = read_sample(url, SampleRequest(table="visits", noise_epsilon=1.0, noise_bounds=({"column": "age", "lower": 0, "upper": 120},)),
                         audit_url=audit_url)
    assert ok.training["age"].between(0, 120).all()
    assert [r["outcome"] for r in audit.read_records(audit_url)] == ["refused", "refused", "ok"]


HOMOGLYPHS = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441", "x": "\u0445", "i": "\u0456"}


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    name=st.text(alphabet="aeopcxitdlunm_", min_size=3, max_size=20).filter(lambda n: any(c in HOMOGLYPHS for c in n)),
    which=st.integers(0, 100),
    invisible=st.sampled_from(["", "\u3164", "\u115f", "\ufe0f", "\u034f"]),
)
def test_look_alike_names_are_refused_and_shown_by_code_point(name, which, invisible):
    """A Latin name with one letter swapped for its Cyrillic twin, or with an invisible character: refused, and the
    refusal shows the code points (the look-alike `аdult` was accepted and audited as if it were `adult`)."""
    from synth_platform.sampling.source import check_identifier

    positions = [i for i, c in enumerate(name) if c in HOMOGLYPHS]
    i = positions[which % len(positions)]
    for fake in (name[:i] + HOMOGLYPHS[name[i]] + name[i + 1:], name + invisible if invisible else None):
        if fake is None:
            continue
        with pytest.raises(SourceError, match=r"U\+[0-9A-F]{4}") as refused:
            check_identifier("Table", fake)
        assert "script" in str(refused.value) or "invisible" in str(refused.value)
    check_identifier("Table", name)  # the genuine name passes


@pytest.mark.parametrize("name", ["患者データ", "patient_データ", "données_patients", "пациенты", "Ελλάδα", "환자_table"])
def test_names_written_in_one_script_or_an_east_asian_mix_are_accepted(name):
    from synth_platform.sampling.source import check_identifier

    check_identifier("Table", name)


def test_the_audit_shows_the_code_points_of_a_refused_look_alike(tmp_path):
    audit_url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    with pytest.raises(SourceError, match="mixes the scripts"):
        read_sample(f"sqlite:///{tmp_path / 'source.sqlite'}", SampleRequest(table="\u0430dult"), audit_url=audit_url)
    (record,) = audit.read_records(audit_url)
    assert record["outcome"] == "refused" and "<U+0430>dult" in record["table_name"]


def test_an_unqualified_name_is_resolved_through_the_search_path_and_audited_as_read(tmp_path):
    """A role whose search_path puts `evil` first reads `evil.adult` when asking for `adult`: the read, the audit and
    the sample now name the schema that was read, and allowed_schemas refuses the others."""
    from synth_platform_tests.conftest import fresh_pg_database

    audit_url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    with fresh_pg_database() as url:
        with sa.create_engine(url).begin() as conn:
            conn.exec_driver_sql("CREATE SCHEMA evil")
            conn.exec_driver_sql("CREATE TABLE public.adult AS SELECT g AS age, 'public' AS origin FROM generate_series(1, 40) g")
            conn.exec_driver_sql("CREATE TABLE evil.adult AS SELECT g AS age, 'evil' AS origin FROM generate_series(1, 40) g")
        evil_path = url + "?options=-csearch_path%3Devil,public"  # the role's setting, as the database side may set it
        plain = read_sample(url, SampleRequest(table="adult"), audit_url=audit_url)
        tricked = read_sample(evil_path, SampleRequest(table="adult"), audit_url=audit_url)
        with pytest.raises(SourceError, match="resolves to schema 'evil'.*allowed schemas \\['public'\\]"):
            read_sample(evil_path, SampleRequest(table="adult", allowed_schemas=("public",)), audit_url=audit_url)
        with pytest.raises(SourceError, match="not among the allowed schemas"):
            read_sample(url, SampleRequest(table="evil.adult", allowed_schemas=("public",)), audit_url=audit_url)
    assert plain.resolved_table == "public.adult" and set(plain.training["origin"]) == {"public"}
    assert tricked.resolved_table == "evil.adult" and set(tricked.training["origin"]) == {"evil"}
    names = [r["table_name"] for r in audit.read_records(audit_url)]
    assert names[:3] == ["public.adult (requested as adult)", "evil.adult (requested as adult)", "adult"]


def test_no_audit_store_no_read(tmp_path, monkeypatch):
    """An audit store that cannot take the intent stops the read before the source is touched; the message says
    why (the audit store's own error) and that nothing was read."""
    from synth_platform.sampling.source import SourceReadFailed
    from synth_platform_tests.conftest import PG_ADMIN_URL

    source = f"sqlite:///{tmp_path / 'source.sqlite'}"
    pd.DataFrame({"age": range(40)}).to_sql("visits", sa.create_engine(source), index=False)
    statements = []

    def seen(conn, cursor, statement, *rest):
        statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", seen)
    try:
        gone = sa.make_url(PG_ADMIN_URL).set(database="no_such_audit_db_x", password="audit-pw-7").render_as_string(hide_password=False)
        with pytest.raises(SourceReadFailed, match=r"Nothing was read.*cannot record the read.*OperationalError") as refused:
            read_sample(source, SampleRequest(table="visits"), audit_url=gone)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", seen)
    assert not [s for s in statements if "visits" in s]  # the source table was never queried
    assert "audit-pw-7" not in str(refused.value)


def test_an_outcome_the_audit_store_cannot_take_discards_the_rows_and_shows_both_errors(tmp_path):
    """The audit table disappears while the read runs (dropped by another session, as when the store is lost
    mid-read): the intent stays on record, the rows are not returned, and the message holds both stories."""
    from synth_platform.sampling.source import SourceReadFailed

    source = f"sqlite:///{tmp_path / 'source.sqlite'}"
    audit_url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    pd.DataFrame({"age": range(40)}).to_sql("visits", sa.create_engine(source), index=False)
    audit_engine = sa.create_engine(audit_url)

    def drop_the_audit_table(conn, cursor, statement, *rest):  # fires on the source read's SELECT
        if "FROM visits" in statement and "count(" not in statement:
            with audit_engine.begin() as other:
                other.exec_driver_sql(f"DROP TABLE {audit.AUDIT_TABLE}")

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", drop_the_audit_table)
    try:
        with pytest.raises(SourceReadFailed, match=r"could not be recorded.*the read succeeded.*no rows are returned"):
            read_sample(source, SampleRequest(table="visits"), audit_url=audit_url)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", drop_the_audit_table)
        audit_engine.dispose()


def test_a_raw_at_sign_in_the_password_reaches_the_driver_as_written():
    """`user:sec@ret@host`: SQLAlchemy alone would send password `sec` to host `ret@host` (a name it then looks
    up); the platform sends password `sec@ret` to `host`, and leaves every other URL as it is."""
    from synth_platform.sampling.credentials import connectable_url

    fixed = sa.make_url(connectable_url("postgresql+psycopg2://reader:sec@ret@127.0.0.1:5432/h?sslmode=require"))
    assert (fixed.username, fixed.password, fixed.host, fixed.port, fixed.database) == ("reader", "sec@ret", "127.0.0.1", 5432, "h")
    assert dict(fixed.query) == {"sslmode": "require"}
    for url in ("postgresql+psycopg2://reader:s%40c@127.0.0.1/h", "sqlite:///x.db", "postgresql://h/db", "not a url"):
        assert connectable_url(url) == url
