"""docs/architecture.md maps every module, script and test file to a capability, and names
only files that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAP = ROOT / "docs" / "architecture.md"
COLUMNS = {1: "geo", 2: "layers", 3: "webmap", 4: "webmap/static"}


def _rows() -> list[list[str]]:
    rows = []
    for line in MAP.read_text(encoding="utf-8").splitlines():
        if line.startswith("| ") and not line.startswith("| Capability"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _mapped() -> dict[str, set[str]]:
    """Every file the table names, per package folder, as paths relative to the root."""
    mapped: dict[str, set[str]] = {folder: set() for folder in COLUMNS.values()}
    mapped["tests"] = set()
    for row in _rows():
        for index, folder in COLUMNS.items():
            for name in _names(row[index]):
                mapped[folder].add(f"{folder}/{name}".rstrip("/"))
        folder = "tests"
        for name in _names(row[5]):
            if "/" in name:
                folder = str(Path(name).parent)
                mapped["tests"].add(name.rstrip("/"))
            else:
                mapped["tests"].add(f"{folder}/{name}")
    return mapped


def test_every_named_file_exists():
    missing = sorted(path for paths in _mapped().values() for path in paths
                     if not (ROOT / path).exists())
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


def test_every_module_and_page_script_is_mapped():
    mapped = _mapped()
    unmapped = []
    for folder in ("geo", "layers", "webmap"):
        for path in sorted((ROOT / folder).glob("*.py")):
            rel = f"{folder}/{path.name}"
            if path.name != "__init__.py" and rel not in mapped[folder]:
                unmapped.append(rel)
    for path in sorted((ROOT / "webmap" / "static").glob("*.js")):
        if f"webmap/static/{path.name}" not in mapped["webmap/static"]:
            unmapped.append(f"webmap/static/{path.name}")
    assert not unmapped, f"modules missing from docs/architecture.md: {unmapped}"


def test_every_test_file_is_mapped():
    mapped = _mapped()["tests"]
    tests = ROOT / "tests"
    folders = [name for name in mapped if (ROOT / name).is_dir()]
    found = (str(path.relative_to(ROOT)) for path in sorted(tests.glob("*/test_*.py")))
    unmapped = [rel for rel in found
                if rel not in mapped and not any(rel.startswith(f + "/") for f in folders)]
    assert not unmapped, f"test files missing from docs/architecture.md: {unmapped}"
