"""Run by the WebUI at every start (modules/launch_utils.py run_extensions_installers), as a
subprocess with the WebUI root on PYTHONPATH.

The WebUI already ships everything this extension needs at run time (safetensors, gradio, torch,
huggingface_hub through gradio/transformers), so this only checks. It installs a bounded
requirement only when a package is missing outright, never upgrades or downgrades anything the
WebUI installed, and honours --skip-install.
"""

from __future__ import annotations

import importlib.metadata
import sys

# distribution name -> (pip requirement, why we need it). Quoted at install time: run_pip goes
# through a shell, where an unquoted ">" is a redirection.
REQUIREMENTS: dict[str, tuple[str, str]] = {
    "safetensors": ("safetensors>=0.3,<1", "reading LoRA and checkpoint headers"),
    # transformers 4.30.2 in A1111 1.10 requires huggingface_hub < 1.0; never bring in a 1.x
    "huggingface_hub": ("huggingface_hub>=0.14.1,<1.0", "downloading the official LCM-LoRA files"),
}
TOO_NEW = {"huggingface_hub": 1}  # major versions that break the WebUI's transformers


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def plan(versions: dict[str, str | None]) -> tuple[list[str], list[str]]:
    """(pip install commands for missing packages, warnings about versions we leave alone)."""
    commands, warnings = [], []
    for name, (requirement, why) in REQUIREMENTS.items():
        version = versions.get(name)
        if version is None:
            commands.append(f'install "{requirement}"')
        elif name in TOO_NEW and _major(version) >= TOO_NEW[name]:
            warnings.append(f"[LCM-LoRA] {name} {version} is installed; the WebUI's transformers needs < "
                            f"{TOO_NEW[name]}.0 ({why} may still work). Left unchanged.")
    return commands, warnings


def _major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def main(launch: object) -> None:
    commands, warnings = plan({name: installed_version(name) for name in REQUIREMENTS})
    for warning in warnings:
        print(warning)
    if commands and getattr(getattr(launch, "args", None), "skip_install", False):
        print(f"[LCM-LoRA] --skip-install: not installing {', '.join(commands)}")
        return
    for command in commands:
        launch.run_pip(command, f"{command.split()[1]} for sd-webui-lcm-lora")  # type: ignore[attr-defined]


if __name__ == "__main__":
    try:
        import launch as webui_launch  # the WebUI root is on PYTHONPATH when the WebUI runs us
    except ImportError:
        print("[LCM-LoRA] install.py is meant to be run by the WebUI; nothing to do.", file=sys.stderr)
    else:
        main(webui_launch)
