"""The package's rooms and the one way their imports run: command line -> library -> rules.

Every ``import`` of every module under lib_lcm (function-level ones too) is read with ``ast``; a
module may import its own room and the rooms listed for it, nothing else.
"""
from __future__ import annotations

import ast
import subprocess
import sys

import pytest
from helpers import ROOT

PACKAGE = ROOT / "lib_lcm"

# room -> the other rooms it may import
MAY_IMPORT: dict[str, set[str]] = {
    "rules": set(),
    "lora_files": {"rules"},
    "sampling": {"rules"},
    "accordion": {"rules", "lora_files"},
    "downloads": {"rules", "lora_files"},
    "standalone": {"rules", "lora_files", "sampling", "downloads"},
    "training": {"rules", "sampling", "standalone"},
    "toy": {"rules", "sampling", "standalone", "training", "lora_files"},
    "live": {"rules", "standalone"},
    "cli": {"rules", "lora_files", "sampling", "downloads", "standalone", "training", "toy", "live"},
    "combinations": {"rules"},
    "webui": {"rules", "lora_files", "sampling", "accordion", "downloads", "combinations"},
}
TOP_LEVEL = {"__init__.py", "__main__.py"}  # the package's face and `python -m lib_lcm`


def rooms() -> list[str]:
    return sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())


def modules_of(room: str) -> list:
    return sorted((PACKAGE / room).rglob("*.py"))


def imported(path) -> set[str]:
    """Every dotted module name ``path`` imports, relative imports made absolute."""
    names = set()
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_every_room_is_known_and_nothing_else_sits_beside_them():
    assert rooms() == sorted(MAY_IMPORT)
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert set(loose) <= TOP_LEVEL, f"modules outside a room: {set(loose) - TOP_LEVEL}"


@pytest.mark.parametrize("room", sorted(MAY_IMPORT))
def test_imports_run_one_way(room):
    allowed = MAY_IMPORT[room] | {room}
    wrong = []
    for path in modules_of(room):
        for name in imported(path):
            parts = name.split(".")
            if parts[0] == "lib_lcm" and len(parts) > 1 and parts[1] in MAY_IMPORT and parts[1] not in allowed:
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_only_the_webui_adapter_imports_the_webui():
    offenders = [f"{path.relative_to(ROOT)}: {name}" for room in MAY_IMPORT if room != "webui"
                 for path in modules_of(room) for name in imported(path)
                 if name.split(".")[0] in ("modules", "modules_forge", "networks")]
    assert not offenders


def test_the_rules_and_the_file_rooms_import_without_torch_gradio_or_the_webui():
    light = [f"lib_lcm.{room}.{p.stem}" for room in ("rules", "lora_files", "accordion", "downloads", "combinations")
             for p in modules_of(room) if p.stem != "__init__"]
    code = (f"import sys; import {', '.join(light)}; "
            "heavy = [m for m in ('torch', 'gradio', 'modules', 'diffusers') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_the_command_line_parser_builds_without_torch():
    code = ("import sys; from lib_lcm.cli.main import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
