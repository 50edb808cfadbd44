"""The house as ARCHITECTURE.md draws it: each room imports only the rooms below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KERNEL = {"demandops"}
# Who may import whom (the layout table of ARCHITECTURE.md and the README).
MAY_IMPORT = {
    "demandops": set(),
    "salesdata": KERNEL,
    "training": KERNEL,
    "lifecycle": KERNEL,
    "feature_repo": KERNEL | {"training"},
    "monitoring": KERNEL | {"training"},
    "serving": KERNEL | {"training", "feature_repo", "lifecycle", "monitoring"},
    "pipelines": KERNEL | {"salesdata", "training", "feature_repo", "lifecycle", "monitoring", "serving"},
}
OURS = set(MAY_IMPORT) | {"bench", "tests"}


def imported_rooms(path: Path) -> set[str]:
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            rooms |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            rooms.add(node.module.split(".")[0])
    return rooms & OURS


@pytest.mark.parametrize("room", sorted(MAY_IMPORT))
def test_a_room_imports_only_the_rooms_below_it(room: str) -> None:
    upward = {
        f"{path.relative_to(ROOT)} imports {other}"
        for path in sorted((ROOT / room).rglob("*.py"))
        for other in imported_rooms(path) - MAY_IMPORT[room] - {room}
    }
    assert not upward, f"{room} may import {sorted(MAY_IMPORT[room]) or 'nothing of ours'}: {sorted(upward)}"


LONGEST_FUNCTION = 60  # lines, outside bench/ and tests/
LONGEST_ASSET_BODY = 30  # an asset calls domain code, records metadata and returns


def functions(room: str):
    for path in sorted((ROOT / room).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield path.relative_to(ROOT), node


def test_functions_stay_short_and_asset_bodies_shorter() -> None:
    too_long = []
    for room in MAY_IMPORT:
        for path, node in functions(room):
            lines = node.end_lineno - node.lineno + 1
            decorators = " ".join(ast.unparse(d) for d in node.decorator_list)
            body = node.body[1:] if isinstance(node.body[0], ast.Expr) and len(node.body) > 1 else node.body
            body_lines = node.end_lineno - body[0].lineno + 1
            if lines > LONGEST_FUNCTION:
                too_long.append(f"{path}:{node.lineno} {node.name}: {lines} lines")
            if "asset" in decorators and body_lines > LONGEST_ASSET_BODY:
                too_long.append(f"{path}:{node.lineno} asset {node.name}: a body of {body_lines} lines")
    assert not too_long, too_long


def test_no_product_code_asserts() -> None:
    """Bentos run under Python's -O (serving/server.py, bento_env), which strips assert statements:
    a check in product code raises an error of its own."""
    asserts = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for room in MAY_IMPORT
        for path in sorted((ROOT / room).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Assert)
    ]
    assert not asserts, asserts
