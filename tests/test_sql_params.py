"""SQL reaches PostGIS only with bound parameters, quoted identifiers and constants.

The scanner reads ``geo/``, ``layers/`` (not ``layers/migrations/``: fixed DDL text) and
``webmap/`` with :mod:`ast`. It finds every string built at run time that is SQL: an
f-string, ``%``-formatting, ``.format()`` or a ``+`` concatenation whose literal parts look
like SQL; whatever string reaches ``text()``, ``.execute()``, ``exec_driver_sql()``, a
psycopg ``copy()``, ``read_postgis()`` or ``psycopg.sql.SQL()`` (a local variable passed
there is followed to its assignments); and every string given to a local variable (or
appended to a list) that is also given SQL. Each expression interpolated into one is

(a) quoted: passed through a quoting function (``q``, ``_ident``, ``_table``, each only
    from its own module, or psycopg's ``sql.Identifier``/``sql.Literal``), and not inside
    a ``'...'`` SQL literal (``q`` does not escape single quotes);
(b) constant: a module-level UPPER_CASE name or an item of one, or arithmetic and
    conditionals of those and literals;
(c) allowed: an entry of ``ALLOWED``, whose reason says where the value comes from;

or it is reported, with file:line. So is an ``ALLOWED`` entry that matches nothing.

Limits: a string made of variables alone (no literal part) is seen only where it reaches
one of those calls or a SQL variable; a fragment handed on through a function parameter
or return value is covered by the reason of its ``ALLOWED`` entry, not traced. An entry
covers every use of that expression text in its module.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("geo", "layers", "webmap")
EXCLUDED = ("layers/migrations/",)

_SQL = re.compile(
    r"\b(?:SELECT|INSERT|UPDATE|DELETE|FROM|WHERE|SET|GRANT|REVOKE|ALTER|DROP|CREATE|COPY"
    r"|WITH|JOIN|UNION|VALUES|RETURNING|TRUNCATE|ANALYZE|AND|OR|NOT|ANY|IN|IS|NULL|AS|ON"
    r"|LIMIT|ORDER BY|GROUP BY|CAST|CASE|EXISTS)\b"
    r"|(?<![\w:]):[A-Za-z_]\w*"  # a bind parameter
    r"|::[a-z]"  # a cast
    r"|\bST_\w+\("  # a PostGIS function
)
_ALIAS_DOT = re.compile(r"(?:^|[\s(,])[a-z]\w?\.$")  # "t." before an interpolated column
_CONSTANT = re.compile(r"_*[A-Z][A-Z0-9_]*")
# Quoting functions and the one module each may come from.
QUOTERS = {"q": "layers/store.py", "_ident": "layers/cluster.py", "_table": "layers/runs.py"}
PSYCOPG_QUOTERS = {"Identifier", "Literal", "Placeholder"}  # as psycopg.sql.X or sql.X
SINKS = {"text", "execute", "executemany", "exec_driver_sql", "copy", "read_postgis",
         "read_sql", "read_sql_query", "SQL"}

# (module, expression as ast.unparse writes it) -> where its value comes from.
# Read the code before adding one: only quoted identifiers, constants, registry names and
# ":name" placeholders (values in the params dict) may flow into the expression.
ALLOWED: dict[tuple[str, str], str] = {
    # layers/access.py
    ("layers/access.py", "column"):
        "read_scope: 'code' or 'jurisdiction_code', picked by a literal comparison",
    # layers/coverage.py
    ("layers/coverage.py", "where"):
        "_buildings: f'FROM buildings b WHERE b.geom && {_BOX}', constant text",
    ("layers/coverage.py", "only"):
        "_targets: literal ' AND k.category = ANY(:schools)' or ''",
    # layers/border.py
    ("layers/border.py", "scope.condition"):
        "access.read_scope: fixed fragments with :scope_zone/:scope_codes placeholders",
    ("layers/border.py", "where"):
        "_our_cameras: ' AND (scope.condition)' or ''",
    # layers/edit.py
    ("layers/edit.py", "props"):
        "_snapshot: registry field names as JSON keys and q()-quoted columns",
    ("layers/edit.py", "f.name"):
        "_snapshot: a registry field name (layer.fields) as a JSON key literal",
    ("layers/edit.py", "scope.condition"):
        "access.read_scope: fixed fragments with :scope_zone/:scope_codes placeholders",
    ("layers/edit.py", "where"):
        "_locked: ' AND (scope.condition)' or ''",
    ("layers/edit.py", "', '.join(select)"):
        "store.staged_columns: 's.\"name\"' per registry field, or a fixed coalesce()",
    ("layers/edit.py", "expr"):
        "_apply: an item of store.staged_columns' select (see ', '.join(select))",
    ("layers/edit.py", "', '.join(sets)"):
        "_apply: q(name) = staged_columns expression, per registry input field",
    # layers/features.py
    ("layers/features.py", "f"):
        "_feature_sql: a registry field name (layer.fields) as a JSON key literal",
    ("layers/features.py", "props"):
        "_feature_sql: registry field names as JSON keys and q()-quoted columns",
    ("layers/features.py", "geom"):
        "_feature_sql: an OUTPUT_CRS template formatted with the literal 't.geom'",
    ("layers/features.py", "decimals"):
        "_feature_sql: the int of an OUTPUT_CRS entry (crs is a key of it)",
    ("layers/features.py", "scope.condition"):
        "access.read_scope: fixed fragments with :scope_zone/:scope_codes placeholders",
    ("layers/features.py", "i"):
        "_where: enumerate() index, makes the bind names :f0, :f1 ...",
    ("layers/features.py", "_feature_sql(layer, query.crs, scope.personal)"):
        "fetch_page: json_build_object of registry fields (see _feature_sql)",
    ("layers/features.py", "_feature_sql(layer, crs, scope.personal)"):
        "fetch_item: json_build_object of registry fields (see _feature_sql)",
    ("layers/features.py", "_feature_sql(layer, CRS84, scope.personal)"):
        "fetch_ids: json_build_object of registry fields (see _feature_sql)",
    ("layers/features.py", "exact"):
        "_bounds: ST_Extent over q(schema).q(table) of the layer's own tables (pg_class)",
    ("layers/features.py", "b"):
        "_bounds: the 'exact' fragment or ST_EstimatedExtent with :s{i}/:t{i} placeholders",
    ("layers/features.py", "union"): "_bounds: ' UNION ALL '.join of the fragments above",
    # layers/partitions.py: identifiers of the registry, names made of them and integers
    ("layers/partitions.py", "layer.time_field"):
        "the registry's declared time field, in double quotes (a fixed identifier)",
    ("layers/partitions.py", "layer.name"): "the registry's table name, in double quotes",
    ("layers/partitions.py", "local"): "_months_in: the quoted time field AT TIME ZONE :tz",
    ("layers/partitions.py", "table"):
        "'staging' or _qualified(partition_name(...)): SCHEMA.\"<layer>_YYYY_MM\"",
    ("layers/partitions.py", "time"): "_create: the quoted time field",
    ("layers/partitions.py", "default"): "_create: _qualified('<layer>_default')",
    ("layers/partitions.py", "in_range"): "_create: the time field between :s and :e",
    ("layers/partitions.py", "start.isoformat()"):
        "_create: month bounds from two integers (DDL takes no bind parameters)",
    ("layers/partitions.py", "end.isoformat()"): "_create: as start.isoformat()",
    ("layers/partitions.py", "k"):
        "empty_partitions, index_loaded, swap_in: an enumerate() index (an integer)",
    ("layers/partitions.py", "_qualified(partition_name(layer, m))"):
        "empty_partitions: SCHEMA.\"<layer>_YYYY_MM\" from the registry name and two integers",
    ("layers/partitions.py", "t"):
        "load_tables: an item of tables, _qualified(<layer>_YYYY_MM_loading)",
    ("layers/partitions.py", "loading"):
        "_loading_name: partition_name(...) + '_loading', inside double quotes",
    ("layers/partitions.py", "_qualified(loading)"): "SCHEMA.\"<layer>_YYYY_MM_loading\"",
    ("layers/partitions.py", "index"):
        "index_loaded: '<layer>_YYYY_MM_loading_<k>', inside double quotes",
    ("layers/partitions.py", "constraint"):
        "index_loaded: pg_get_constraintdef() of the parent's own key (the catalogue's text)",
    ("layers/partitions.py", "using[1] or ''"):
        "index_loaded: the literal 'UNIQUE ' of pg_get_indexdef() of the parent, or ''",
    ("layers/partitions.py", "using[2]"):
        "index_loaded: 'USING ...' of pg_get_indexdef() of the parent's index (catalogue)",
    ("layers/partitions.py", "';\\n'.join(statements)"):
        "index_loaded, swap_in: the statements built above from the entries of this module",
    ("layers/partitions.py", "_qualified(name)"): "swap_in: SCHEMA.\"<layer>_YYYY_MM\"",
    ("layers/partitions.py", "name"):
        "swap_in: partition_name(layer, month), '<layer>_YYYY_MM', inside double quotes",
    ("layers/partitions.py", "names[name, parent]"):
        "swap_in: a partition index's name from pg_class (catalogue), in double quotes",
    ("layers/features.py", "where"):
        "' AND '.join of _where's clauses (fixed text, q() columns, :placeholders) or "
        "'TRUE'; fetch_item/fetch_ids: fixed text around scope.condition",
    # layers/gridcheck.py, layers/units.py, layers/safety.py, layers/tiles.py
    ("layers/gridcheck.py", "scope.condition"):
        "access.read_scope: fixed fragments with :scope_zone/:scope_codes placeholders",
    ("layers/gridcheck.py", "where"): "grid_history: ' AND (scope.condition)' or ''",
    ("layers/units.py", "scope.condition"):
        "access.read_scope: fixed fragments with :scope_zone/:scope_codes placeholders",
    ("layers/units.py", "where"): "regenerate_units: ' AND (scope.condition)' or ''",
    ("layers/safety.py", "scope.condition"):
        "access.read_scope: fixed fragments with :scope_zone/:scope_codes placeholders",
    ("layers/safety.py", "where"): "safety_index: ' AND (scope.condition)' or ''",
    ("layers/tiles.py", "scope.condition"):
        "access.read_scope: fixed fragments with :scope_zone/:scope_codes placeholders",
    ("layers/tiles.py", "where"): "layer_tile: 'AND (scope.condition)' or ''",
    ("layers/tiles.py", "columns"):
        "layer_tile: q()-quoted registry fields, '::text AS' for date-times",
    # layers/store.py
    ("layers/store.py", "columns"):
        "stage: q(name) and a _SQL_TYPES type per registry field; read_features: q() names",
    ("layers/store.py", "names"):
        "stage: 'row_no', 'geom' and q()-quoted registry field names (COPY column list)",
    ("layers/store.py", "leaves"):
        "_location_problems: one of two literal subqueries",
    ("layers/store.py", "_degrees_for(NEAR_M)"):
        "_location_problems: SQL arithmetic around the float constant NEAR_M",
    ("layers/store.py", "metres"):
        "_degrees_for: a float; its one caller passes the constant NEAR_M",
    ("layers/store.py", "also_staged"):
        "_reference_problems: fixed text around q()-quoted registry names, or ''",
    ("layers/store.py", "', '.join(select)"):
        "staged_columns: 's.\"name\"' per registry field, or a fixed coalesce()",
    ("layers/store.py", "time"): "_delete_outside: q(layer.time_field)",
    ("layers/store.py", "k"): "_delete_outside: a range() index, makes :s0/:e0 ... names",
    ("layers/store.py", "inside"):
        "_delete_outside: ' OR '.join of fixed text around q() time and :s{k}/:e{k}",
    ("layers/store.py", "table"):
        "_copy_messages: q(layer.name) or a partitions.load_tables name (SCHEMA.\"...\")",
    ("layers/store.py", "copy_options"):
        "_copy_messages: _copy_payload's '(geom, q(field)..., updated_by[, id]) FROM STDIN"
        "[ (FORMAT BINARY)]' of registry fields",
    ("layers/store.py", "_degrees_for(NEAR_M, 'p.pt')"):
        "_point_locations: SQL arithmetic around the float constant NEAR_M and 'p.pt'",
    ("layers/store.py", "point"):
        "_degrees_for: the literal 's.pt' (default) or 'p.pt' from its one other caller",
    ("layers/store.py", "sql"):
        "_rows: its callers in this module pass literals or f-strings of q() names; "
        "refresh_derived: the loop over the _CASCADE constants",
    ("layers/store.py", "alias"): "refresh_derived.box: called with the literals 'h2', 'g2'",
    ("layers/store.py", "box('h2')"):
        "refresh_derived: 'ST_Intersects(h2.geom, ST_GeomFromEWKB(:area))' or 'TRUE'",
    ("layers/store.py", "box('g2')"):
        "refresh_derived: 'ST_Intersects(g2.geom, ST_GeomFromEWKB(:area))' or 'TRUE'",
    # layers/overview.py
    ("layers/overview.py", "where"):
        "cities: one literal or ''; layer_features, feature_counts: a SOURCES constant's "
        "where plus ' AND (scope.condition)'; heat_points: 'AND (scope.condition)' or ''",
    ("layers/overview.py", "scope.condition"):
        "access.read_scope: fixed fragments with :scope_zone/:scope_codes placeholders",
    ("layers/overview.py", "f"):
        "layer_features: a registry field name (Source.shown_fields) as a JSON key literal",
    ("layers/overview.py", "props"):
        "layer_features: registry field names as JSON keys and q()-quoted columns",
}


@dataclass(frozen=True)
class Site:
    """One expression interpolated into SQL text, and which kind of safe it is."""

    path: str
    line: int
    expr: str
    kind: str  # "quoted", "constant", "allowed" or "unsafe"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {{{self.expr}}}"


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _flat_add(node: ast.expr, covered: list[ast.AST]) -> list:
    """Operands of a chain of ``+``; f-strings in it are inlined."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        covered.append(node)
        return _flat_add(node.left, covered) + _flat_add(node.right, covered)
    if isinstance(node, ast.JoinedStr):
        covered.append(node)
        return [v.value for v in node.values]
    return [node.value] if _is_str(node) else [node]


def _pieces(node: ast.AST, in_sql: bool = False) -> tuple[list, list[ast.AST]] | None:
    """A run-time string as literal text (str) and interpolated expressions, in order.

    Also the nodes that make it (a ``+`` chain is one string). None if ``node`` is not
    a string built at run time. ``.format`` on a variable counts only ``in_sql``.
    """
    if isinstance(node, ast.JoinedStr):
        if any(isinstance(v, ast.FormattedValue) for v in node.values):
            return [v.value for v in node.values], [node]
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        covered: list[ast.AST] = []
        parts = _flat_add(node, covered)
        if any(isinstance(p, str) for p in parts) and any(isinstance(p, ast.AST) for p in parts):
            return parts, covered
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and (
            _is_str(node.left) or isinstance(node.left, ast.JoinedStr)):
        right = node.right
        values = right.elts if isinstance(right, ast.Tuple) else (
            right.values if isinstance(right, ast.Dict) else [right])
        return [*_template(node.left), *values], [node]
    elif isinstance(node, ast.Call) and _call_name(node) == "format" and isinstance(
            node.func, ast.Attribute):
        receiver = node.func.value
        if _call_name(receiver) == "SQL" and receiver.args and _is_str(receiver.args[0]):
            receiver = receiver.args[0]  # psycopg.sql.SQL("...").format(...)
        values = [a.value if isinstance(a, ast.Starred) else a for a in node.args]
        values += [k.value for k in node.keywords]
        if _is_str(receiver) or isinstance(receiver, ast.JoinedStr):
            return [*_template(receiver), *values], [node]
        if in_sql:
            return [receiver, *values], [node]
    return None


def _template(node: ast.expr) -> list:
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values]
    return [node.value]


def _looks_like_sql(pieces: list) -> bool:
    if _SQL.search("\n".join(p for p in pieces if isinstance(p, str))):
        return True
    for i, piece in enumerate(pieces[:-1]):
        if isinstance(piece, str) and isinstance(pieces[i + 1], ast.AST):
            after = pieces[i + 2] if i + 2 < len(pieces) else ""
            if _ALIAS_DOT.search(piece) or (
                    piece.endswith("'") and isinstance(after, str) and after.startswith("'")):
                return True
    return False


def _joined_name(expr: ast.expr) -> str | None:
    """``items`` of ``"sep".join(items)``, else None."""
    if (isinstance(expr, ast.Call) and _call_name(expr) == "join" and len(expr.args) == 1
            and isinstance(expr.args[0], ast.Name)):
        return expr.args[0].id
    return None


def _sqlish(value: ast.expr) -> bool:
    """A literal or run-time string (or a list of them) that looks like SQL."""
    if _is_str(value):
        return bool(_SQL.search(value.value))
    if isinstance(value, (ast.IfExp, ast.BoolOp, ast.ListComp, ast.GeneratorExp, ast.List)):
        return any(_sqlish(v) for v in ast.iter_child_nodes(value) if isinstance(v, ast.expr))
    found = _pieces(value)
    return bool(found) and _looks_like_sql(found[0])


def _import_path(path: str, node: ast.ImportFrom) -> str:
    """The module file a ``from ... import`` in ``path`` reads (``layers/store.py``)."""
    base = list(Path(path).parent.parts)
    if node.level:
        base = base[: len(base) - node.level + 1]
    else:
        base = []
    return "/".join([*base, *(node.module or "").split(".")]) + ".py"


class _Scanner:
    """Sites of one module, sorted into quoted, constant, allowed and unsafe."""

    def __init__(self, path: str, source: str, allowed: dict[tuple[str, str], str]):
        self.path, self.allowed = path, allowed
        self.tree = ast.parse(source, filename=path)
        self.sites: list[Site] = []
        self.used: set[tuple[str, str]] = set()
        self.done: set[int] = set()
        self.bindings: dict[int, dict[str, list | None]] = {}
        self.constants: set[str] = set()
        self.quoters: set[str] = set()
        self.psycopg_names: set[str] = set()
        for node in self.tree.body:
            self._declare(node)

    def _declare(self, node: ast.stmt) -> None:
        if isinstance(node, ast.FunctionDef) and QUOTERS.get(node.name) == self.path:
            self.quoters.add(node.name)
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        self.constants |= {t.id for t in targets
                           if isinstance(t, ast.Name) and _CONSTANT.fullmatch(t.id)}
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                name = alias.asname or alias.name
                if _CONSTANT.fullmatch(name):
                    self.constants.add(name)
                if QUOTERS.get(alias.name) == _import_path(self.path, node):
                    self.quoters.add(name)
                if node.module == "psycopg.sql" and alias.name in PSYCOPG_QUOTERS:
                    self.psycopg_names.add(name)

    def run(self) -> list[Site]:
        self._visit(self.tree, None)
        return self.sites

    def _visit(self, node: ast.AST, scope: ast.AST | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = child
                self._sql_variables(child)
            if isinstance(child, ast.Call) and _call_name(child) in SINKS:
                for arg in child.args[:1] + [k.value for k in child.keywords if k.arg == "sql"]:
                    self._sink_arg(arg, inner)
            found = _pieces(child)
            if found and id(child) not in self.done and _looks_like_sql(found[0]):
                self._check(found, inner)
            self._visit(child, inner)

    # -- strings known to be SQL ------------------------------------------------------

    def _sql_variables(self, func: ast.AST) -> None:
        """A local that is given one SQL-looking string holds SQL: check all its values."""
        self.bindings[id(func)] = _bindings(func)
        for values in self.bindings[id(func)].values():
            if values and any(_sqlish(v) for v in values):
                self._scan_fragments(values, func)

    def _sink_arg(self, arg: ast.expr, scope: ast.AST | None) -> None:
        if isinstance(arg, ast.Name) and not self._constant(arg, scope):
            values = self._assigned(arg.id, scope)
            if values is not None:
                for value in values:
                    self._sql_value(value, scope)
                return
        self._sql_value(arg, scope)

    def _sql_value(self, value: ast.expr, scope: ast.AST | None) -> None:
        if _is_str(value) or (isinstance(value, ast.Call) and _call_name(value) in SINKS):
            return  # a literal, or a call checked where it is visited
        if isinstance(value, ast.IfExp):
            self._sql_value(value.body, scope)
            self._sql_value(value.orelse, scope)
            return
        found = _pieces(value, in_sql=True)
        if found:
            if id(value) not in self.done:
                self._check(found, scope)
            return
        self._interpolated(value, scope, False)

    def _check(self, found: tuple[list, list[ast.AST]], scope: ast.AST | None) -> None:
        pieces, nodes = found
        self.done |= {id(n) for n in nodes}
        in_literal = False  # inside '...': q() does not escape single quotes
        for piece in pieces:
            if isinstance(piece, str):
                in_literal ^= piece.count("'") % 2 == 1
            else:
                self._interpolated(piece, scope, in_literal)

    # -- one interpolated expression --------------------------------------------------

    def _interpolated(self, expr: ast.expr, scope: ast.AST | None, in_literal: bool) -> None:
        if isinstance(expr, ast.Constant):
            return
        found = _pieces(expr, in_sql=True)
        if found:
            if id(expr) not in self.done:
                self._check(found, scope)
            return
        if isinstance(expr, ast.IfExp) and not self._constant(expr, scope):
            self._interpolated(expr.body, scope, in_literal)
            self._interpolated(expr.orelse, scope, in_literal)
            return
        parts = self._join_parts(expr)
        if self._constant(expr, scope):
            kind = "constant"
        elif not in_literal and self._quoted(expr, scope):
            kind = "quoted"
        elif parts is not None:
            for part in parts:
                self._interpolated(part, scope, in_literal)
            return
        else:
            name = expr.id if isinstance(expr, ast.Name) else _joined_name(expr)
            if name is not None:
                self._scan_fragments(self._assigned(name, scope) or [], scope)
            key = (self.path, ast.unparse(expr))
            kind = "allowed" if key in self.allowed else "unsafe"
            self.used.add(key)
        self.sites.append(Site(self.path, expr.lineno, ast.unparse(expr), kind))

    def _scan_fragments(self, values: list[ast.expr], scope: ast.AST | None) -> None:
        """Check the strings built into a variable (or list) that goes into SQL."""
        for value in values:
            found = _pieces(value)
            if found:
                if id(value) not in self.done:
                    self._check(found, scope)
            elif isinstance(value, ast.IfExp):
                self._scan_fragments([value.body, value.orelse], scope)
            elif isinstance(value, ast.BoolOp):
                self._scan_fragments(value.values, scope)
            elif isinstance(value, (ast.ListComp, ast.GeneratorExp)):
                self._scan_fragments([value.elt], scope)
            elif isinstance(value, (ast.List, ast.Tuple)):
                self._scan_fragments(value.elts, scope)
            elif (parts := self._join_parts(value)) is not None:
                self._scan_fragments(parts, scope)
            elif (items := _joined_name(value)) is not None:
                self._scan_fragments(self._assigned(items, scope) or [], scope)

    def _constant(self, expr: ast.expr, scope: ast.AST | None) -> bool:
        if isinstance(expr, ast.Constant):
            return True
        if isinstance(expr, ast.Name):  # a module constant, not shadowed by a local
            return expr.id in self.constants and (
                scope is None or expr.id not in self.bindings[id(scope)])
        if isinstance(expr, ast.Subscript):
            return self._constant(expr.value, scope)
        if isinstance(expr, ast.BinOp):
            return self._constant(expr.left, scope) and self._constant(expr.right, scope)
        if isinstance(expr, ast.UnaryOp):
            return self._constant(expr.operand, scope)
        if isinstance(expr, ast.IfExp):
            return self._constant(expr.body, scope) and self._constant(expr.orelse, scope)
        return False

    def _quoted(self, expr: ast.expr, scope: ast.AST | None) -> bool:
        if not isinstance(expr, ast.Call):
            return False
        func = expr.func
        if isinstance(func, ast.Name) and func.id in self.quoters | self.psycopg_names:
            return True
        if isinstance(func, ast.Attribute) and func.attr in PSYCOPG_QUOTERS:
            return ast.unparse(func.value) in ("sql", "psycopg.sql")
        parts = self._join_parts(expr)
        return parts is not None and all(
            self._quoted(p, scope) or self._constant(p, scope) for p in parts)

    def _join_parts(self, expr: ast.expr) -> list[ast.expr] | None:
        """The items of ``"sep".join(<comprehension, list or map(q, ...)>)``, else None."""
        if not (isinstance(expr, ast.Call) and _call_name(expr) == "join"
                and isinstance(expr.func, ast.Attribute) and _is_str(expr.func.value)
                and len(expr.args) == 1):
            return None
        items = expr.args[0]
        if isinstance(items, (ast.GeneratorExp, ast.ListComp)):
            return [items.elt]
        if isinstance(items, (ast.List, ast.Tuple)):
            out = [e.value if isinstance(e, ast.Starred) else e for e in items.elts]
            return [e.elt if isinstance(e, ast.GeneratorExp) else e for e in out]
        if (isinstance(items, ast.Call) and _call_name(items) == "map" and items.args
                and isinstance(items.args[0], ast.Name) and items.args[0].id in self.quoters):
            return [ast.Call(items.args[0], [items.args[1]], [])]
        return None

    def _assigned(self, name: str, scope: ast.AST | None) -> list[ast.expr] | None:
        """Every value given to local ``name`` in ``scope`` (appends and items too).

        None if ``name`` is a parameter, a loop variable or unpacked from a tuple.
        """
        if scope is None:
            return None
        if id(scope) not in self.bindings:
            self.bindings[id(scope)] = _bindings(scope)
        return self.bindings[id(scope)].get(name) or None


def _bindings(func: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, list | None]:
    """Local name -> the values it is given, or None when they cannot all be known."""
    args = func.args
    out: dict[str, list | None] = {
        a.arg: None for a in [*args.posonlyargs, *args.args, *args.kwonlyargs,
                              *filter(None, [args.vararg, args.kwarg])]}
    for node in ast.walk(func):
        for target, value in _binds(node):
            base = target.value if isinstance(target, ast.Subscript) else target
            if isinstance(base, ast.Name) and value is not None:
                if out.setdefault(base.id, []) is not None:
                    out[base.id].append(value)
            else:
                out.update(dict.fromkeys(_stored(target)))
    return out


def _binds(node: ast.AST) -> list[tuple[ast.expr, ast.expr | None]]:
    """(target, value) pairs that ``node`` binds; value None for a loop or ``with``."""
    if isinstance(node, ast.Assign):
        return [(t, node.value) for t in node.targets]
    if isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        return [(node.target, node.value)]
    if _appends(node):
        return [(node.func.value, node.args[-1])]
    if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension, ast.NamedExpr)):
        return [(node.target, None)]
    if isinstance(node, ast.withitem) and node.optional_vars is not None:
        return [(node.optional_vars, None)]
    return []


def _appends(node: ast.AST) -> bool:
    """``x.append(value)`` or ``x.insert(i, value)``."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("append", "insert") and bool(node.args))


def _stored(target: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)
            and isinstance(n.ctx, ast.Store)}


def scan(path: str, source: str, allowed: dict[tuple[str, str], str] | None = None
         ) -> tuple[list[Site], set[tuple[str, str]]]:
    """The SQL interpolation sites of one module and the ALLOWED keys they use."""
    scanner = _Scanner(path, source, ALLOWED if allowed is None else allowed)
    return scanner.run(), scanner.used & set(scanner.allowed)


def _modules() -> list[Path]:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    return [p for p in files
            if not p.relative_to(ROOT).as_posix().startswith(EXCLUDED)]


def scan_project() -> tuple[list[Site], list[str]]:
    """Every site in the packages, and the ALLOWED entries that match nothing."""
    sites: list[Site] = []
    used: set[tuple[str, str]] = set()
    for path in _modules():
        found, keys = scan(path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8"))
        sites += found
        used |= keys
    return sites, stale_entries(ALLOWED, used)


def stale_entries(allowed: dict[tuple[str, str], str], used: set[tuple[str, str]]
                  ) -> list[str]:
    """An ALLOWED entry that no site uses any more hides nothing: it must go."""
    return [f"ALLOWED entry {key!r} matches nothing: remove it"
            for key in allowed if key not in used]


# -- tests -----------------------------------------------------------------------------


def test_sql_is_built_only_from_quoted_identifiers_constants_and_reviewed_fragments():
    sites, stale = scan_project()
    unsafe = [f"{s}: not quoted, not a constant and not in ALLOWED; bind the value as a "
              ":parameter or quote the identifier with q()" for s in sites if s.kind == "unsafe"]
    assert unsafe + stale == []
    assert {s.kind for s in sites} == {"quoted", "constant", "allowed"}


def _unsafe(source: str) -> list[str]:
    sites, _ = scan("snippet.py", source, {})
    return [str(s) for s in sites if s.kind == "unsafe"]


def test_the_scanner_reports_a_value_in_an_fstring():
    source = ("def find(conn, name):\n"
              "    return conn.execute(text(f\"SELECT * FROM t WHERE name = '{name}'\"))\n")
    assert _unsafe(source) == ["snippet.py:2: {name}"]


def test_the_scanner_reports_percent_format_and_concatenation():
    source = ("def remove(conn, fid, table, kind):\n"
              "    sql = 'DELETE FROM t WHERE id = %s' % fid\n"
              "    conn.execute(text(sql))\n"
              "    conn.execute(text('DELETE FROM {} WHERE 1 = 1'.format(table)))\n"
              "    conn.execute(text('SELECT id FROM t WHERE kind = ' + kind))\n")
    assert _unsafe(source) == ["snippet.py:2: {fid}", "snippet.py:4: {table}",
                               "snippet.py:5: {kind}"]


def test_the_scanner_follows_a_variable_into_text():
    source = ("def count(conn, column):\n"
              "    sql = f'{column} > 0'\n"  # no SQL word: seen because it reaches text()
              "    return conn.execute(text(sql))\n"
              "def run(conn, sql):\n"
              "    return conn.execute(text(sql))\n")
    assert _unsafe(source) == ["snippet.py:2: {column}", "snippet.py:5: {sql}"]


def test_the_scanner_accepts_quoted_names_and_constants_only():
    source = ("from .store import q\n"
              "LIMIT_N = 10\n"
              "def page(conn, layer, name, back):\n"
              "    conn.execute(text(f\"SELECT {q(name)} FROM {q(layer.name)} \"\n"
              "                      f\"ORDER BY id {'DESC' if back else 'ASC'} \"\n"
              "                      f\"LIMIT {LIMIT_N + 1}\"))\n"
              "    conn.execute(text(f\"SELECT * FROM t WHERE name = '{q(name)}'\"))\n")
    sites, _ = scan("layers/snippet.py", source, {})
    assert [(s.line, s.expr, s.kind) for s in sites] == [
        (4, "q(name)", "quoted"), (4, "q(layer.name)", "quoted"),
        (5, "'DESC' if back else 'ASC'", "constant"), (6, "LIMIT_N + 1", "constant"),
        (7, "q(name)", "unsafe"),  # q() does not escape a ' inside a SQL literal
    ]


def test_a_q_that_is_not_the_store_quoter_does_not_count():
    source = ("def q(name):\n    return name\n"
              "def run(conn, name):\n    conn.execute(text(f'DROP TABLE {q(name)}'))\n")
    assert _unsafe(source) == ["snippet.py:4: {q(name)}"]


def test_an_allowlist_entry_that_matches_nothing_is_reported():
    allowed = {("snippet.py", "where"): "fixed fragments", ("snippet.py", "gone"): "removed"}
    source = "def f(conn, where):\n    conn.execute(text(f'SELECT 1 FROM t WHERE {where}'))\n"
    sites, used = scan("snippet.py", source, allowed)
    assert [(s.expr, s.kind) for s in sites] == [("where", "allowed")]
    assert stale_entries(allowed, used) == [
        "ALLOWED entry ('snippet.py', 'gone') matches nothing: remove it"]


def _quoter(name: str, **context: object):
    """The quoting function ``name`` compiled from its module alone (no imports)."""
    path = QUOTERS[name]
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    namespace = dict(context)
    exec(compile(ast.Module([node], []), path, "exec"), namespace)
    return namespace[name]


def test_the_quoting_functions_the_scanner_trusts_quote_or_refuse():
    assert _quoter("q")('odd "name"') == '"odd ""name"""'
    runs = ast.parse((ROOT / QUOTERS["_table"]).read_text(encoding="utf-8"))
    tables = next(ast.literal_eval(n.value) for n in runs.body if isinstance(n, ast.Assign)
                  and ast.unparse(n.targets[0]) == "RUN_TABLES")
    ident = _quoter("_ident", ClusterError=ValueError)
    table = _quoter("_table", RUN_TABLES=tables)
    assert ident("safegrid_test") == "safegrid_test"
    assert table("hotspot_runs") == "hotspot_runs"
    for check in (ident, table):
        for bad in ('x"; DROP DATABASE safegrid; --', "hotspot_runs; --"):
            with pytest.raises(ValueError):
                check(bad)
