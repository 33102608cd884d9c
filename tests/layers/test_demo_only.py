"""``safegrid demo --only CODE``: one city's installation of the demo.

The partition, checked against the full demo (in a database of this module's own, a copy
of the small demo as loaded, so no other test's edits of the shared demo interfere; the store
derived every feature's jurisdiction): for every layer, the features of ``--only A`` are
exactly the full demo's features whose ``jurisdiction_code`` lies in A's tree (same
geometry, fields and code, as multisets); those of ``--only A`` and ``--only B`` have
nothing in common; and ``--only A --only B`` holds exactly the two together. Each one-city
database holds its neighbours' city boundaries only, so both compute the same border zone.
"""

import os
import subprocess
from collections import Counter

import pytest
import shapely
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from layers import LAYERS, demo
from layers.access import border_zone_wkb, subtree_codes
from layers.db import engine, migrate

from ..clihelp import run_in_process
from ..conftest import DEMO_END, SAFEGRID, demo_database, fresh_database, run_cli

pytestmark = pytest.mark.db

A, B, C = "430100", "430300", "430200"


@pytest.fixture(scope="module")
def only(db_url):
    """Engines of four databases: the full demo, ``--only A``, ``--only B``, both.

    ``--only B`` is loaded by the installed command, ``safegrid demo --only B`` (a real
    process, while the others load here; its result is ``out["b_cli"]``): the tests below
    check that database layer by layer against the full demo, and the others show that
    ``demo.load`` does the same in process.
    """
    base = make_url(db_url).database
    out = {"full_url": demo_database(f"{base}_only_full"),  # a copy of the run's small demo
           "a_url": fresh_database(f"{base}_only_a")}
    migrate(out["a_url"])  # the other two start as copies of it, migrated and empty
    for key, url in zip(("b", "ab"), _copies(out["a_url"], [f"{base}_only_b",
                                                           f"{base}_only_ab"]), strict=True):
        out[key + "_url"] = url
    for key in ("full", "a", "b", "ab"):
        out[key] = engine(out[key + "_url"])
    env = {**os.environ, "SAFEGRID_DATABASE_URL": out["b_url"]}
    loading_b = subprocess.Popen([SAFEGRID, "demo", "--only", B, "--end", DEMO_END.isoformat()],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
    try:
        for key, codes in (("a", (A,)), ("ab", (A, B))):
            demo.load(out[key], "small", 1, end=DEMO_END, only=codes)
    finally:
        stdout, stderr = loading_b.communicate(timeout=600)
    out["b_cli"] = subprocess.CompletedProcess(loading_b.args, loading_b.returncode, stdout,
                                               stderr)
    assert loading_b.returncode == 0, stderr
    yield out
    for key in ("full", "a", "b", "ab"):
        out[key].dispose()


def _copies(template: str, names: list[str]) -> list[str]:
    """URLs of databases ``names``, made afresh as copies of the database at ``template``."""
    url = make_url(template)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # a template must have no one connected
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = :d AND pid <> pg_backend_pid()"),
                     {"d": url.database})
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{url.database}"'))
    admin.dispose()
    return [url.set(database=name).render_as_string(hide_password=False) for name in names]


def _fields(name: str) -> list[str]:
    own = [f.name for f in LAYERS[name].input_fields if f.name != "jurisdiction_code"]
    return [*own, "jurisdiction_code"] if name != "jurisdictions" else own


def _signatures(db, name: str, codes: list[str] | None = None) -> Counter:
    """Counter of (geometry WKB hex, fields...) of ``name``'s rows (within ``codes``)."""
    fields = [f for f in _fields(name) if f != "parent_code"]
    column = "code" if name == "jurisdictions" else "jurisdiction_code"
    where = f" WHERE {column} = ANY(:codes)" if codes is not None else ""
    cols = ", ".join(f'"{f}"::text' for f in fields)
    with db.connect() as conn:
        rows = conn.execute(text(f'SELECT encode(ST_AsBinary(geom), \'hex\'), {cols} '
                                 f'FROM "{name}"{where}'), {"codes": codes}).all()
    return Counter(tuple(r) for r in rows)


def test_each_layer_is_partitioned_between_the_cities(only):
    db = only["full"]
    with db.connect() as conn:
        tree = {A: subtree_codes(conn, A), B: subtree_codes(conn, B)}
    assert not set(tree[A]) & set(tree[B])
    for name in demo.LOAD_ORDER:
        full_a = _signatures(db, name, tree[A])
        full_b = _signatures(db, name, tree[B])
        got_a = _signatures(only["a"], name, tree[A])
        got_b = _signatures(only["b"], name, tree[B])
        assert got_a == full_a, name
        assert got_b == full_b, name
        assert not (set(got_a) & set(got_b)), name
        if name != "jurisdictions":
            # nothing else: every feature of a one-city database is its city's
            assert sum(_signatures(only["a"], name).values()) == sum(full_a.values()), name
            assert sum(_signatures(only["b"], name).values()) == sum(full_b.values()), name
            assert _signatures(only["ab"], name) == full_a + full_b, name
        assert len(full_a) > 0 or name == "patrol_routes", name
    # the demo's cross-border layers do reach both cities
    assert sum(_signatures(only["b"], "patrol_routes").values()) > 0


def test_neighbours_are_bare_boundaries(only):
    with only["full"].connect() as conn:
        full = {r.code: r.wkb for r in conn.execute(text(
            "SELECT code, ST_AsBinary(geom) AS wkb FROM jurisdictions WHERE level = 'city'"))}
    for key, mine, neighbours in (("a", A, {B, C}), ("b", B, {A, C}), ("ab", A, {C})):
        with only[key].connect() as conn:
            roots = conn.execute(text(
                "SELECT code, level, ST_AsBinary(geom) AS wkb, "
                "EXISTS (SELECT 1 FROM jurisdictions c WHERE c.parent_code = j.code) AS kids "
                "FROM jurisdictions j WHERE parent_code IS NULL ORDER BY code")).all()
            assert not conn.execute(text(
                "SELECT count(*) FROM jurisdictions WHERE level = 'province'")).scalar_one()
            outside = set(roots_codes := [r.code for r in roots]) - set(
                subtree_codes(conn, mine) + (subtree_codes(conn, B) if key == "ab" else []))
            assert outside == neighbours, key
            for r in roots:
                assert r.level == "city" and bytes(r.wkb) == bytes(full[r.code])
                assert r.kids == (r.code not in neighbours)
            for name in demo.LOAD_ORDER[1:]:  # no data of a neighbour
                assert not conn.execute(text(
                    f'SELECT count(*) FROM "{name}" WHERE jurisdiction_code = ANY(:n)'),
                    {"n": sorted(neighbours)}).scalar_one(), (key, name)
            assert mine in roots_codes


def test_both_installations_compute_the_same_border_zone(only):
    zones = []
    for engine_ in (only["full"], only["a"], only["b"], only["ab"]):
        with engine_.connect() as conn:
            zones.append(shapely.from_wkb(border_zone_wkb(conn, A, B)))
    assert zones[0].area > 0
    for zone in zones[1:]:
        assert shapely.equals_exact(shapely.normalize(zone), shapely.normalize(zones[0]), 1e-9)


def test_demo_users_of_a_one_city_installation(only):
    with only["b"].connect() as conn:
        users = {r.name: (r.role, r.jurisdiction_code, r.partner_code) for r in conn.execute(
            text("SELECT name, role, jurisdiction_code, partner_code FROM users"))}
    assert users == {"admin": ("admin", None, None), "planner": ("planner", B, None),
                     "police": ("police", B, None), "viewer": ("viewer", B, None),
                     "partner": ("border_partner", B, A)}
    with only["ab"].connect() as conn:
        users = {r.name: (r.jurisdiction_code, r.partner_code) for r in conn.execute(
            text("SELECT name, jurisdiction_code, partner_code FROM users"))}
    assert users == {u["name"]: (u["jurisdiction"], u["partner"]) for u in demo.DEMO_USERS}


def _refused(only, run, code):
    """``safegrid demo --only A --only code`` through ``run``: one line, nothing written."""
    with only["a"].connect() as conn:
        before = conn.execute(text("SELECT layer, version FROM layer_versions "
                                   "ORDER BY layer")).all()
    result = run(only["a_url"], "demo", "--only", A, "--only", code)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a demo city" in lines[0] and "430300" in lines[0]
    with only["a"].connect() as conn:
        assert conn.execute(text("SELECT layer, version FROM layer_versions "
                                 "ORDER BY layer")).all() == before


@pytest.mark.parametrize("code", ["999999", "430102", "", "430000"])
def test_bad_codes_are_refused_and_nothing_is_written(only, code):
    _refused(only, run_in_process, code)  # the command in this process, for each code


def test_a_bad_code_is_refused_by_the_installed_command(only):
    _refused(only, run_cli, "999999")


def test_cli_loads_one_city(only):
    result = only["b_cli"]  # the fixture's `safegrid demo --only B`
    assert result.returncode == 0, result.stderr
    assert f"only {B}" in result.stdout and "partner" in result.stdout
    assert f"{B} with partner {A}" in result.stdout
    for name in ("incidents", "roads"):  # what the full demo holds in B's tree
        with only["b"].connect() as conn:
            tree = subtree_codes(conn, B)
        assert _signatures(only["b"], name) == _signatures(only["full"], name, tree), name
