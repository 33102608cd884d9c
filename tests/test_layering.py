"""geo/ is pure computation: it imports neither the database nor the web layer."""

import ast
from pathlib import Path

FORBIDDEN = {"sqlalchemy", "geoalchemy2", "flask", "folium", "psycopg", "layers", "webmap",
             "alembic", "waitress"}
GEO = Path(__file__).resolve().parents[1] / "geo"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_geo_imports_no_database_or_web_modules():
    files = sorted(GEO.rglob("*.py"))
    assert files, "geo/ has no modules"
    offenders = {str(p.relative_to(GEO)): _imports(p) & FORBIDDEN for p in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy\nfrom sqlalchemy import text\n")
    assert _imports(bad) & FORBIDDEN == {"sqlalchemy"}
