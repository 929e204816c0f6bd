"""The house keeps its shape, read from the package's own source.

- The logic lives in domain packages (``DOMAINS``) above a bottom floor (``FLOOR``):
  the floor imports no domain, and a module enters another package only through what
  that package's ``__init__`` exports (its ``__all__``). Packages depend one way.
- Domains and models never import routers, schemas or the console: responses are built
  by the schemas (``XRead.of``), from what the domains return.
- A domain's functions take at most two arguments by position; the rest by keyword.
- Only ``app/db/`` (and the migrations) asks which database it runs on.
- Routers build no SQL: they do not import SQLAlchemy. The console, a client of the
  domains like the routers, imports no router and of SQLAlchemy only the types it
  passes along (a session, a statement) and the reading of a stored point.
- One function changes a ticket's status: ``tickets.workflow.change``.

Each rule is also run on a line that breaks it, so that a rule that matches nothing is
seen to fail.
"""

import ast
import graphlib
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"

# The domain packages, bottom to top, and the bottom floor they stand on.
DOMAINS = (
    "areas",
    "categories",
    "units",
    "staff",
    "media",
    "platforms",
    "riders",
    "tickets",
    "intake",
    "alerts",
    "public",
    "notify",
    "open311",
    "privacy",
    "ops",
)
FLOOR_PACKAGES = ("db", "geo")
FLOOR_MODULES = ("config", "errors", "log", "masking", "pagination", "security", "text")
# The HTTP layer, the tables and shapes, the console: clients of the domains.
LAYERS = ("routers", "models", "schemas", "console", "migrations")
PACKAGES = DOMAINS + FLOOR_PACKAGES


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


def package_of(path: str) -> str | None:
    """The package under ``app/`` that holds ``path`` (``app/tickets/queue.py``:
    ``tickets``), or None for a module of ``app/`` itself."""
    parts = Path(path).parts
    return parts[1] if len(parts) > 2 else None


def exported(package: str) -> set[str]:
    """What ``app/<package>/__init__.py`` exports: its ``__all__``."""
    tree = ast.parse((APP / package / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return set(ast.literal_eval(node.value))
    return set()


def side_doors(tree: ast.AST, home: str | None, exports: dict[str, set[str]]) -> list[str]:
    """The imports of ``tree`` (a module of package ``home``) that enter another package
    of ``exports`` other than through its ``__init__``: a submodule, a name it does not
    export, or an attribute of the package it does not export."""
    found = []
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] != "app" or len(parts) < 2 or parts[1] not in exports.keys() - {home}:
                    continue
                if len(parts) > 2:
                    found.append(alias.name)
                elif alias.asname:
                    aliases[alias.asname] = parts[1]
        elif isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] != "app":
                continue
            if len(parts) == 1:
                for alias in node.names:
                    if alias.name in exports and alias.name != home:
                        aliases[alias.asname or alias.name] = alias.name
                continue
            package = parts[1]
            if package not in exports or package == home:
                continue
            if len(parts) > 2:
                found.append(node.module)
            else:
                found += [
                    f"{node.module}.{a.name}" for a in node.names if a.name not in exports[package]
                ]
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr not in exports[aliases[node.value.id]]
        ):
            found.append(f"app.{aliases[node.value.id]}.{node.attr}")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "app"
            and node.value.attr in exports.keys() - {home}
            and node.attr not in exports[node.value.attr]
        ):
            found.append(f"app.{node.value.attr}.{node.attr}")
    return sorted(set(found))


def relative_imports(tree: ast.AST) -> list[int]:
    """Lines that import relatively (``from .x import y``): the rules read absolute
    names, so the package imports absolutely."""
    return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0]


def upward(uses: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(domain, the domain above it that it imports): ``DOMAINS`` runs bottom to top, and a
    domain uses only those below it."""
    return sorted(
        (d, other)
        for d, used in uses.items()
        for other in used
        if d in DOMAINS and other in DOMAINS and DOMAINS.index(other) >= DOMAINS.index(d)
    )


def named_domains(doc: str) -> set[str]:
    """The domains a docstring names as ````app.<domain>````."""
    return set(re.findall(r"``app\.(\w+)``", doc)) & set(DOMAINS)


def misplaced_test_folders(folders: set[str]) -> set[str]:
    """Test folders named after nothing: a package's, the API's, the console's or e2e."""
    return folders - {*PACKAGES, "console", "api", "e2e"}


def package_imports(tree: ast.AST) -> set[str]:
    """The packages (domains and floor) that ``tree`` imports."""
    found = set()
    for name in imported(tree):
        parts = name.split(".")
        if parts[0] == "app" and len(parts) > 1 and parts[1] in PACKAGES:
            found.add(parts[1])
    return found


def positional_crowds(tree: ast.Module) -> list[str]:
    """Module-level functions that take more than two arguments by position."""
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and len(node.args.posonlyargs) + len(node.args.args) > 2
    ]


def every_export() -> dict[str, set[str]]:
    return {package: exported(package) for package in PACKAGES}


def test_every_package_has_a_place_and_says_what_it_owns() -> None:
    packages = {p.name for p in APP.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(DOMAINS + FLOOR_PACKAGES + LAYERS) - {"migrations"}
    undocumented = [
        p
        for p in PACKAGES
        if len(ast.get_docstring(ast.parse((APP / p / "__init__.py").read_text())) or "") < 80
    ]
    assert undocumented == []
    modules = {p.stem for p in APP.glob("*.py")}
    assert set(FLOOR_MODULES) <= modules


def test_the_tests_follow_the_packages() -> None:
    """A domain's tests sit in ``tests/<domain>/``; beside them, the HTTP API's
    cross-cutting tests, the console's, and the end-to-end tests with real processes."""
    tests = APP.parent / "tests"
    folders = {p.name for p in tests.iterdir() if (p / "__init__.py").exists()}
    assert misplaced_test_folders(folders) == set()
    assert {"tickets", "intake", "media", "open311"} <= folders


@pytest.mark.parametrize("layer", [*DOMAINS, "models"])
def test_domains_and_models_import_no_routers_schemas_or_console(layer: str) -> None:
    wrong = {
        path: names
        for path, tree in sources(layer)
        if (names := layer_imports(tree, ("app.routers", "app.schemas", "app.console")))
    }
    assert wrong == {}


def test_the_bottom_floor_imports_no_domain() -> None:
    floor = [src for p in FLOOR_PACKAGES for src in sources(p)] + [
        src for m in FLOOR_MODULES for src in sources(f"{m}.py")
    ]
    domains = tuple(f"app.{d}" for d in DOMAINS)
    wrong = {path: names for path, tree in floor if (names := layer_imports(tree, domains))}
    assert wrong == {}


def test_a_package_is_entered_only_through_its_init() -> None:
    exports = every_export()
    wrong = {
        path: doors
        for path, tree in sources()
        if not path.startswith("app/migrations/")
        and (doors := side_doors(tree, package_of(path), exports))
    }
    assert wrong == {}


def test_each_domain_says_which_domains_it_uses() -> None:
    """What a domain's ``__init__`` names (````app.<domain>````) is what it imports; the
    top floor, which may use every domain, names none."""
    told, found = {}, {}
    for domain in DOMAINS:
        doc = ast.get_docstring(ast.parse((APP / domain / "__init__.py").read_text())) or ""
        told[domain] = named_domains(doc)
        found[domain] = set().union(*(package_imports(t) for _, t in sources(domain)))
        found[domain] &= set(DOMAINS) - {domain}
    assert {d: sorted(n) for d, n in told.items() if d != "ops"} == {
        d: sorted(n) for d, n in found.items() if d != "ops"
    }
    assert told["ops"] == set()


def test_packages_depend_one_way() -> None:
    """Bottom to top, as ``DOMAINS`` lists them (and so with no cycle)."""
    uses: defaultdict[str, set[str]] = defaultdict(set)
    for path, tree in sources():
        package = package_of(path)
        if package in PACKAGES:
            uses[package] |= package_imports(tree) - {package}
    assert upward(uses) == []
    graphlib.TopologicalSorter(uses).prepare()  # CycleError names a cycle


def test_the_package_imports_absolutely() -> None:
    wrong = {path: lines for path, tree in sources() if (lines := relative_imports(tree))}
    assert wrong == {}


@pytest.mark.parametrize("domain", DOMAINS)
def test_domain_functions_take_at_most_two_arguments_by_position(domain: str) -> None:
    wrong = {path: names for path, tree in sources(domain) if (names := positional_crowds(tree))}
    assert wrong == {}


def test_only_the_database_package_asks_which_database_it_is() -> None:
    wrong = {
        path: lines
        for path, tree in sources()
        if not path.startswith("app/db/")
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


def test_the_console_uses_the_domains_and_builds_no_sql() -> None:
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
    assert assigned == {("app/tickets/workflow.py", "change"), ("app/alerts/service.py", "_end")}


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

    # A side door (a submodule, an unexported name or attribute), a domain below the
    # floor, a crowd of positional arguments, a cycle.
    exports = {"tickets": {"change"}, "intake": {"prepare"}, "db": set()}
    doors = ast.parse(
        "from app.tickets.queue import queue_page\nfrom app.tickets import change, secret\n"
        "from app import intake\nintake.prepare()\nintake.batch.Batch()\n"
        "import app.intake.rules\nfrom app.intake import rules\n"
    )
    assert side_doors(doors, None, exports) == [
        "app.intake.batch",
        "app.intake.rules",
        "app.tickets.queue",
        "app.tickets.secret",
    ]
    assert side_doors(doors, "tickets", exports) == ["app.intake.batch", "app.intake.rules"]
    assert layer_imports(ast.parse("from app.tickets import change"), ("app.tickets",)) != []
    crowd = ast.parse("def f(a, b, c): ...\ndef g(a, b, *, c): ...\nclass C:\n def m(s, a, b): ...")
    assert positional_crowds(crowd) == ["f"]
    aliased = ast.parse(
        "import app.intake as i\nimport app.tickets\ni.batch.Batch()\n"
        "app.tickets.workflow.change()\napp.tickets.change()\n"
    )
    assert side_doors(aliased, None, exports) == ["app.intake.batch", "app.tickets.workflow"]
    assert relative_imports(ast.parse("from ..tickets.queue import x\nfrom app import y")) == [1]
    assert upward({"areas": {"tickets", "db"}, "tickets": {"areas"}}) == [("areas", "tickets")]
    assert named_domains("Uses ``app.media``, ``app.db`` and ``app.nothing``.") == {"media"}
    assert misplaced_test_folders({"tickets", "services", "api"}) == {"services"}
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter({"tickets": {"intake"}, "intake": {"tickets"}}).prepare()
