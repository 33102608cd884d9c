"""The packages keep to their layers: geo → layers → webmap.

geo/ is pure computation: it imports neither the database nor the web layer; layers/
does not import the web layer; webmap/ runs no SQL of its own (it asks layers/); and no
module uses another module's private (``_name``) helpers.
"""

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


def test_layers_import_no_web_modules():
    files = sorted((GEO.parent / "layers").rglob("*.py"))
    assert files, "layers/ has no modules"
    offenders = {str(p.relative_to(GEO.parent)): _imports(p) & {"webmap", "flask", "folium"}
                 for p in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def sql_calls(path: Path) -> list[str]:
    """``line: what`` for each way ``path`` runs SQL itself (``text``, ``execute``...)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names
                      if a.name in ("text", "select", "insert", "update", "delete")]
        elif isinstance(node, ast.Attribute) and node.attr in (
                "execute", "executemany", "exec_driver_sql", "scalar", "scalars"):
            found.append((node.lineno, f".{node.attr}"))
    return [f"{line}: {what}" for line, what in sorted(found)]


def test_web_modules_run_no_sql():
    files = sorted((GEO.parent / "webmap").rglob("*.py"))
    offenders = {str(p.relative_to(GEO.parent)): sql_calls(p) for p in files}
    assert {k: v for k, v in offenders.items() if v} == {}, \
        "webmap/ asks layers/ for what it shows: move the query into a layers function"


def test_blueprints_take_the_database_from_webmap_db():
    """As in Flask's tutorial: the application factory builds the app, blueprints import
    nothing from it (``webmap/app.py`` imports them)."""
    offenders = []
    for path in sorted((GEO.parent / "webmap").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and path.name != "__init__.py" and (
                    (node.level == 1 and node.module == "app")
                    or node.module == "webmap.app"):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_the_sql_check_sees_a_query(tmp_path):
    bad = tmp_path / "page.py"
    bad.write_text("from sqlalchemy import Engine, text\n"
                   "def f(conn):\n    return conn.execute(text('SELECT 1')).scalar()\n")
    assert sql_calls(bad) == ["1: sqlalchemy.text", "3: .execute", "3: .scalar"]


def test_the_check_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy\nfrom sqlalchemy import text\n")
    assert _imports(bad) & FORBIDDEN == {"sqlalchemy"}


# -- no module uses another module's private names --------------------------------------

ROOT = GEO.parent
PACKAGES = ("geo", "layers", "webmap")


def _module_file(root: Path, dotted: str) -> Path | None:
    """The file of our module ``dotted`` (``layers.store``) under ``root``, or None."""
    base = root.joinpath(*dotted.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _absolute(path: Path, root: Path, node: ast.ImportFrom) -> str:
    """The dotted module a ``from ... import`` in ``path`` reads from."""
    if not node.level:
        return node.module or ""
    package = list(path.relative_to(root).parent.parts)
    package = package[: len(package) - node.level + 1]
    return ".".join([*package, *([node.module] if node.module else [])])


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(path: Path, root: Path) -> list[str]:
    """``file:line: name`` for each private name of another of our modules that ``path`` uses.

    ``from X import _name`` where X is one of our packages' modules, and ``M._name``
    where ``M`` is bound to such a module by an import (``import layers.store as M``,
    ``from layers import store``).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    where = path.relative_to(root).as_posix()
    found, modules = [], {}  # local name -> dotted module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(path, root, node)
            if source.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{where}:{node.lineno}: {source}.{alias.name}")
                elif _module_file(root, f"{source}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{source}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    local = alias.asname or alias.name.split(".")[0]
                    modules[local] = alias.name if alias.asname else local
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and _private(node.attr)):
            continue
        owner = ast.unparse(node.value)
        head = owner.split(".")[0]
        if head in modules and _module_file(root, modules[head] + owner[len(head):]):
            found.append(f"{where}:{node.lineno}: {modules[head]}{owner[len(head):]}"
                         f".{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    files = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    assert files
    uses = [use for p in files for use in private_uses(p, ROOT)]
    assert uses == [], ("make the helper public (no underscore, documented) or move it "
                        "where it is used:\n" + "\n".join(uses))


def test_the_check_sees_private_imports_and_attributes(tmp_path):
    (tmp_path / "layers" / "demo").mkdir(parents=True)
    (tmp_path / "webmap").mkdir()
    for name in ("layers/__init__.py", "layers/store.py", "layers/demo/__init__.py",
                 "webmap/__init__.py"):
        (tmp_path / name).write_text('"""x."""\n')
    (tmp_path / "layers" / "demo" / "places.py").write_text(
        "from ..store import _rows, q\n"  # a private name, relative
        "from . import _frame\n"  # not ours as a module: a name of layers.demo
        "from numpy import _private\n"  # another project's: not ours to judge
        "class A:\n    _x = 1\n    def f(self):\n        return self._x, __name__\n")
    (tmp_path / "webmap" / "pages.py").write_text(
        "import layers.store\nimport layers.demo as demo\nfrom layers import store as s\n"
        "from layers.demo import places\n"
        "a = layers.store._rows\nb = demo._Frame\nc = s._rows\nd = places.A._x\n"
        "e = s.q.__doc__\nf = places._helper()\n")
    found = [use for p in sorted(tmp_path.rglob("*.py")) for use in private_uses(p, tmp_path)]
    assert found == [
        "layers/demo/places.py:1: layers.store._rows",
        "layers/demo/places.py:2: layers.demo._frame",
        "webmap/pages.py:5: layers.store._rows",
        "webmap/pages.py:6: layers.demo._Frame",
        "webmap/pages.py:7: layers.store._rows",
        "webmap/pages.py:10: layers.demo.places._helper",
    ]
