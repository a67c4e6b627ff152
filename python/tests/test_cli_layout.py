"""The ``bgad`` command line is a package without import cycles: each command module uses
only ``bgad.cli.common`` of its siblings, and nothing below ``bgad`` imports the CLI."""

import ast
from pathlib import Path

import bgad
import bgad.cli

PACKAGE = Path(bgad.__file__).parent


def _relative_imports(path: Path):
    """(level, module, names) of every relative import in a file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            out.append((node.level, node.module or "", [a.name for a in node.names]))
    return out


def test_command_modules_import_only_common_of_their_siblings():
    commands = sorted(p.stem for p in (PACKAGE / "cli").glob("*.py") if p.stem not in ("__init__", "common"))
    assert set(commands) >= {"demo", "fit", "predict", "evaluate", "rpag"}
    for name in commands + ["common"]:
        for level, module, names in _relative_imports(PACKAGE / "cli" / f"{name}.py"):
            if level == 1:  # a sibling inside bgad.cli
                siblings = [module] if module else names
                assert siblings == ["common"] and name != "common", (name, module, names)


def test_the_library_does_not_import_the_cli():
    for path in PACKAGE.glob("*.py"):
        if path.name == "__main__.py":
            continue
        for level, module, names in _relative_imports(path):
            assert not (level == 1 and (module.startswith("cli") or "cli" in names)), path.name
    assert not (PACKAGE / "cli.py").exists() and not (PACKAGE / "demo.py").exists()
    assert set(bgad.cli.COMMANDS) == {"demo", "fit", "fit-many", "predict", "evaluate", "export"}
