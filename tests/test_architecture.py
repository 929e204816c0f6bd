"""The layers keep to their places, read from the package's own source.

- Services and models never import routers or schemas: responses are built by the
  schemas (``XRead.of``), from what services return.
- Only ``app/db.py`` (and the migrations) asks which database it runs on.
- Routers build no SQL: they do not import SQLAlchemy. The console, a client of the
  services like the routers, imports no router and of SQLAlchemy only the types it
  passes along (a session, a statement) and the reading of a stored point.
- One function changes a ticket's status: ``workflow.change``.

Each rule is also run on a line that breaks it, so that a rule that matches nothing is
seen to fail.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"


def sources(*parts: str) -> Iterator[tuple[str, ast.Module]]:
    base = APP.joinpath(*parts)
    for path in sorted(base.rglob("*.py")) if base.is_dir() else [base]:
        yield str(path.relative_to(APP.parent)), ast.parse(path.read_text(), str(path))


def imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def layer_imports(tree: ast.AST, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        name
        for name in imported(tree)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


def dialect_questions(tree: ast.AST) -> list[int]:
    """Lines that ask which database this is: ``….dialect.name``, ``dialect.name``,
    ``….is_sqlite``."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            asks_name = node.attr == "name" and (
                (isinstance(node.value, ast.Attribute) and node.value.attr == "dialect")
                or (isinstance(node.value, ast.Name) and node.value.id == "dialect")
            )
            if asks_name or node.attr == "is_sqlite":
                lines.append(node.lineno)
    return lines


def status_assignments(tree: ast.AST) -> list[tuple[str, int]]:
    """(enclosing function, line) of every assignment to ``….status``."""
    found = []
    for function in [
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    ] + [tree]:
        for node in ast.walk(function):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AugAssign | ast.AnnAssign)
                else []
            )
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "status":
                    name = getattr(function, "name", "<module>")
                    found.append((name, node.lineno))
    # A node inside a function is seen from the function and from the module: keep the
    # innermost.
    inner = {line for name, line in found if name != "<module>"}
    return sorted({(n, line) for n, line in found if n != "<module>" or line not in inner})


@pytest.mark.parametrize("layer", ["services", "models"])
def test_services_and_models_import_no_routers_or_schemas(layer: str) -> None:
    wrong = {
        path: names
        for path, tree in sources(layer)
        if (names := layer_imports(tree, ("app.routers", "app.schemas")))
    }
    assert wrong == {}


def test_only_the_database_module_asks_which_database_it_is() -> None:
    wrong = {
        path: lines
        for path, tree in sources()
        if path != "app/db.py"
        and not path.startswith("app/migrations/")
        and (lines := dialect_questions(tree))
    }
    assert wrong == {}


def test_routers_build_no_sql() -> None:
    wrong = {
        path: names
        for path, tree in sources("routers")
        if (names := layer_imports(tree, ("sqlalchemy", "geoalchemy2")))
    }
    assert wrong == {}


# What the console may name of SQLAlchemy and GeoAlchemy: types it hands on and the
# reading of a stored point, nothing that builds SQL.
CONSOLE_TYPES = {
    "sqlalchemy",
    "sqlalchemy.Select",
    "sqlalchemy.orm",
    "sqlalchemy.orm.Session",
    "geoalchemy2.shape",
    "geoalchemy2.shape.to_shape",
}


def test_the_console_uses_the_services_and_builds_no_sql() -> None:
    wrong = {
        path: names
        for path, tree in sources("console")
        if (
            names := [
                n
                for n in layer_imports(tree, ("app.routers", "sqlalchemy", "geoalchemy2"))
                if n not in CONSOLE_TYPES
            ]
        )
    }
    assert wrong == {}


def test_one_function_changes_a_tickets_status() -> None:
    """And one an alert's: each thing with a status has one place that changes it."""
    assigned = {(path, name) for path, tree in sources() for name, _ in status_assignments(tree)}
    assert assigned == {("app/services/workflow.py", "change"), ("app/services/alerts.py", "_end")}


def test_each_rule_sees_what_breaks_it() -> None:
    bad = ast.parse(
        "from app.schemas.reports import ReportRead\nimport sqlalchemy\n"
        "def f(session, ticket):\n"
        "    if session.get_bind().dialect.name == 'sqlite' or db.is_sqlite:\n"
        "        ticket.status = 'closed'\n"
    )
    assert layer_imports(bad, ("app.schemas",)) == [
        "app.schemas.reports",
        "app.schemas.reports.ReportRead",
    ]
    assert layer_imports(bad, ("sqlalchemy",)) == ["sqlalchemy"]
    assert dialect_questions(bad) == [4, 4]
    assert status_assignments(bad) == [("f", 5)]
