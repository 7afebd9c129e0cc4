"""A read-only transaction is not side-effect free: the role a read runs as, and the functions a view calls, are
checked before anything is read (sampling/privileges.py). Real PostgreSQL; the "attack" is a view whose WHERE runs
`COPY … TO PROGRAM 'touch <marker>'` on this machine's server."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from synth_platform.sampling import audit
from synth_platform.sampling.errors import SourceError
from synth_platform.sampling.privileges import SERVER_ROLES, privileged_role_reasons, side_effect_functions
from synth_platform.sampling.source import SampleRequest, SourceReadFailed, read_sample
from synth_platform_tests.conftest import admin_url_of, fresh_pg_database


@pytest.fixture(scope="module")
def database():
    """A database owned by the unprivileged test role, with table `visits` (40 rows)."""
    with fresh_pg_database() as url:
        with sa.create_engine(url).begin() as conn:
            conn.exec_driver_sql("CREATE TABLE visits AS SELECT g AS age, g %% 3 AS ward FROM generate_series(1, 40) g")
        yield url


@contextlib.contextmanager
def login_role(url: str, *attributes_and_grants: str):
    """A fresh login role with SELECT on the database's tables plus the given statements (`{role}` filled in);
    dropped on exit. Yields a URL that connects as it."""
    role = f"synth_test_r{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url_of(url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
            conn.exec_driver_sql(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
            for statement in attributes_and_grants:
                conn.exec_driver_sql(statement.format(role=role))
        yield sa.make_url(url).set(username=role).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')
        admin.dispose()


def role_of(url: str):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return privileged_role_reasons(conn)
    finally:
        engine.dispose()


def test_a_superuser_is_refused_before_the_read_and_allowed_only_when_asked(database, tmp_path):
    audit_url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    superuser = admin_url_of(database)
    with pytest.raises(SourceError, match=r"Nothing was read.*privileged role.*is a superuser.*allow_privileged_role"):
        read_sample(superuser, SampleRequest(table="visits"), audit_url=audit_url)
    allowed = read_sample(superuser, SampleRequest(table="visits", allow_privileged_role=True), audit_url=audit_url)
    plain = read_sample(database, SampleRequest(table="visits"), audit_url=audit_url)
    refused, ok, ordinary = audit.read_records(audit_url)
    assert refused["outcome"] == "refused" and "is a superuser" in refused["error"]
    assert ok["outcome"] == "ok" and "is a superuser" in ok["read_as"] and "allowed by allow_privileged_role" in ok["read_as"]
    assert allowed.read_as == ok["read_as"]
    assert ordinary["outcome"] == "ok" and ordinary["read_as"] == plain.read_as == sa.make_url(database).username


@pytest.mark.parametrize("server_role", SERVER_ROLES)
def test_members_of_the_server_file_and_program_roles_are_refused(database, tmp_path, server_role):
    with login_role(database, f'GRANT {server_role} TO "{{role}}"') as url:
        assert role_of(url).reasons == (f"role {sa.make_url(url).username} is a member of {server_role}",)
        with pytest.raises(SourceError, match=f"privileged role.*member of {server_role}"):
            read_sample(url, SampleRequest(table="visits"), audit_url=f"sqlite:///{tmp_path / 'a.sqlite3'}")


def test_membership_through_a_group_and_set_role_are_seen(database):
    """Privileges reached indirectly: through a NOLOGIN group (inherited or not), a superuser group the role can
    SET ROLE to, CREATEROLE, and a role whose `SET role` default makes current_user another role."""
    group = f"synth_test_g{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url_of(database), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{group}" NOLOGIN SUPERUSER')
    try:
        with login_role(database, f'GRANT "{group}" TO "{{role}}"') as url:
            name = sa.make_url(url).username
            assert role_of(url).reasons == (f"role {name} can SET ROLE to superuser {group}",)
        with login_role(database, 'ALTER ROLE "{role}" NOINHERIT', f'GRANT "{group}" TO "{{role}}"',
                        'ALTER ROLE "{role}" SET role = ' + f"'{group}'") as url:
            name = sa.make_url(url).username
            check = role_of(url)
            assert check.role == f"{name} acting as {group}"
            assert f"current_user {group} is a superuser" in check.reasons
            assert f"session_user {name} can SET ROLE to superuser {group}" in check.reasons
        with login_role(database, 'ALTER ROLE "{role}" CREATEROLE') as url:
            assert "has CREATEROLE" in role_of(url).reasons[0]
        with login_role(database) as url:
            assert not role_of(url).privileged  # SELECT only: the recipe of the README
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE "{group}"')
        admin.dispose()


@pytest.fixture()
def trapped_view(tmp_path):
    """A database with table `visits` and views over it whose WHERE calls a function running a shell command
    (`touch <marker>`) through COPY … TO PROGRAM: plain VOLATILE, and SECURITY DEFINER owned by a superuser.
    Yields (URL as the unprivileged owner, marker path)."""
    marker = Path("/tmp") / f"synth_marker_{uuid.uuid4().hex}"
    with fresh_pg_database() as url:
        with sa.create_engine(url).begin() as conn:
            conn.exec_driver_sql("CREATE TABLE visits AS SELECT g AS age FROM generate_series(1, 40) g")
        with sa.create_engine(admin_url_of(url)).begin() as conn:  # what a hostile schema owner with rights sets up
            for name, definer in (("leak", ""), ("leak_as_owner", "SECURITY DEFINER")):
                conn.exec_driver_sql(
                    f"CREATE FUNCTION {name}() RETURNS boolean LANGUAGE plpgsql {definer} AS $$ BEGIN "
                    f"COPY (SELECT 1) TO PROGRAM 'touch {marker}'; RETURN true; END $$"
                )
            conn.exec_driver_sql("CREATE VIEW trapped AS SELECT * FROM visits WHERE leak()")
            conn.exec_driver_sql("CREATE VIEW trapped_definer AS SELECT * FROM visits WHERE leak_as_owner()")
            conn.exec_driver_sql("CREATE VIEW over_trapped AS SELECT age FROM trapped")  # one view further
            owner = sa.make_url(url).username
            conn.exec_driver_sql(f'GRANT SELECT ON trapped, trapped_definer, over_trapped TO "{owner}"')
        try:
            yield url, marker
        finally:
            marker.unlink(missing_ok=True)


def test_a_view_that_runs_a_shell_command_never_runs_it(trapped_view, tmp_path):
    """As a superuser the view would run `touch` on the server: the role is refused first. Allowing the role still
    refuses the view's function; and as an unprivileged role the view is refused for its function, and even when
    allowed, the server refuses COPY TO PROGRAM to that role. The marker never appears."""
    url, marker = trapped_view
    audit_url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    superuser = admin_url_of(url)
    for table in ("trapped", "trapped_definer", "over_trapped"):
        with pytest.raises(SourceError, match="privileged role"):
            read_sample(superuser, SampleRequest(table=table), audit_url=audit_url)
        with pytest.raises(SourceError, match=r"would call functions that can have side effects: (public\.)?leak"):
            read_sample(superuser, SampleRequest(table=table, allow_privileged_role=True), audit_url=audit_url)
        with pytest.raises(SourceError, match=r"side effects: .*VOLATILE"):
            read_sample(url, SampleRequest(table=table), audit_url=audit_url)
    with pytest.raises(SourceError, match=r"leak_as_owner\(\) \(VOLATILE, SECURITY DEFINER\)"):
        read_sample(url, SampleRequest(table="trapped_definer"), audit_url=audit_url)
    with pytest.raises(SourceReadFailed, match="must be superuser or have privileges of the pg_execute_server_program"):
        read_sample(url, SampleRequest(table="trapped", allow_side_effect_functions=True), audit_url=audit_url)
    assert not marker.exists()
    assert read_sample(url, SampleRequest(table="visits"), audit_url=audit_url).rows_returned == 40
    failed = audit.read_records(audit_url)[-2]
    assert failed["outcome"] == "failed" and "calls leak() (VOLATILE) — allowed by allow_side_effect_functions" in failed["read_as"]


def test_functions_reached_through_operators_and_row_level_security_are_found(tmp_path):
    with fresh_pg_database() as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE visits AS SELECT g AS age FROM generate_series(1, 40) g")
            conn.exec_driver_sql("CREATE FUNCTION noisy_eq(integer, integer) RETURNS boolean LANGUAGE sql VOLATILE AS 'SELECT $1 = $2'")
            conn.exec_driver_sql("CREATE OPERATOR === (LEFTARG = integer, RIGHTARG = integer, FUNCTION = noisy_eq)")
            conn.exec_driver_sql("CREATE VIEW by_operator AS SELECT * FROM visits WHERE age === age")
            conn.exec_driver_sql("CREATE FUNCTION pure(integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 > 0'")
            conn.exec_driver_sql("CREATE VIEW harmless AS SELECT * FROM visits WHERE pure(age) AND random() >= 0")
            conn.exec_driver_sql("CREATE FUNCTION watch() RETURNS boolean LANGUAGE sql VOLATILE AS 'SELECT true'")
            conn.exec_driver_sql("CREATE TABLE guarded AS SELECT * FROM visits")
            conn.exec_driver_sql("ALTER TABLE guarded ENABLE ROW LEVEL SECURITY")
            conn.exec_driver_sql("CREATE POLICY p ON guarded USING (watch())")
        with engine.connect() as conn:
            assert [f.describe() for f in side_effect_functions(conn, None, "by_operator")] == ["noisy_eq(integer,integer) (VOLATILE)"]
            assert [f.describe() for f in side_effect_functions(conn, "public", "guarded")] == ["watch() (VOLATILE)"]
            # immutable user functions and built-in volatile ones (random) are not side effects of the view
            assert side_effect_functions(conn, None, "harmless") == []
            assert side_effect_functions(conn, None, "visits") == []
        engine.dispose()
        audit_url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
        assert read_sample(url, SampleRequest(table="harmless"), audit_url=audit_url).rows_returned == 40


def test_an_unknown_dialect_is_not_assumed_unprivileged():
    """Only PostgreSQL's catalog is read; SQLite has no roles. Anything else cannot be checked, so it is privileged
    until the request allows it (checked on the decision, without connecting anywhere: a stand-in connection that
    only names its dialect, because no MySQL server is on this machine)."""

    class Dialect:
        name = "mysql"

    class Conn:
        dialect = Dialect()

    check = privileged_role_reasons(Conn())  # type: ignore[arg-type]
    assert check.privileged and "cannot read mysql role privileges" in check.reasons[0]
