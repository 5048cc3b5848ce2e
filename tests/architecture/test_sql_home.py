"""One home for SQL: no module outside the catalogue `agents/ports/sql/` holds SQL text.

Every string literal of the source tree (docstrings and other bare strings excepted: they are
documentation, never sent) is searched for SQL statement keywords; tests/ is left out (tests
may run statements of their own, e.g. OPTIMIZE to force merges). Renaming a column then
touches the catalogue only.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "agents" / "ports" / "sql"
SKIPPED_DIRS = {"tests", "node_modules", "__pycache__"}

# Statement keywords as written in this code base (upper case), and lower-case statements
# that cannot be English prose ("insert into {table} failed" is a log message).
SQL = re.compile(
    r"\b(SELECT|INSERT\s+INTO|CREATE\s+(TABLE|DATABASE|(MATERIALIZED\s+)?VIEW)|ALTER\s+TABLE"
    r"|DROP\s+(TABLE|VIEW|DATABASE)|TRUNCATE\s+TABLE|OPTIMIZE\s+TABLE)\b"
    r"|(?i:\bselect\b.+\bfrom\b|\bcreate\s+table\b|\balter\s+table\b)",
    re.S,
)


def sources() -> list[Path]:
    """Every Python file of the project but the tests and the catalogue."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if any(p.startswith(".") or p in SKIPPED_DIRS or p.endswith(".egg-info") for p in parts):
            continue
        if path.is_relative_to(CATALOGUE):
            continue
        found.append(path)
    return found


def sql_literals(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """(line, text) of each string literal holding SQL, documentation strings excepted."""
    tree = ast.parse(source, filename=filename)
    documentation = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in documentation
        and SQL.search(node.value)
    ]


def test_no_sql_outside_the_catalogue() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {' '.join(text.split())[:80]}"
        for path in sources()
        for line, text in sql_literals(path.read_text(), str(path))
    ]
    assert found == []


def test_the_scan_covers_the_tree_and_skips_only_the_catalogue() -> None:
    scanned = {path.relative_to(ROOT).as_posix() for path in sources()}
    assert {"console/queries.py", "agents/ingest.py", "deploy/grafana/generate.py"} <= scanned
    assert "streams/storage/common.py" in scanned
    assert not any(name.startswith(("agents/ports/sql/", "tests/")) for name in scanned)
    # the catalogue itself is where the SQL is
    assert any(sql_literals(path.read_text()) for path in CATALOGUE.glob("*.py"))


def test_the_scan_sees_sql_in_literals_and_f_strings() -> None:
    """Guards the checker: the forms SQL took before it moved are caught."""
    source = '''
"""Module docstring: SELECT count() FROM reports is documentation."""
Q = "SELECT report_id FROM reports WHERE report_id IN %(ids)s"
def f(table, names, where):
    """Docstring: INSERT INTO is fine here."""
    store.query(f"SELECT count() AS n FROM reports FINAL{where}")
    run(f"INSERT INTO {table} ({', '.join(names)}) VALUES")
    run("CREATE TABLE IF NOT EXISTS t (a String) ENGINE = Memory")
    run(f"ALTER TABLE {table} ADD COLUMN x String")
    run("TRUNCATE TABLE reports")
    run("select h3_r8 from incident_hours")
    label = "Sélectionner une catégorie"
    log.warning(f"insert into {table} failed")
    "a bare string: CREATE TABLE x"
'''
    lines = sorted({line for line, _ in sql_literals(source)})
    assert lines == [3, 6, 7, 8, 9, 10, 11]
