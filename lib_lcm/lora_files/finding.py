"""Find the acceleration LoRA file for an architecture in the WebUI's Lora folders.

The WebUI names a LoRA by its file stem, whatever sub-folder it sits in, and walks the folders
recursively, skipping hidden directories (``extensions-builtin/Lora/networks.py``
``process_network_files`` through ``shared.walk_files``). We look the same way, then read the
header of each candidate so that a file named like the SD 1.5 LoRA but holding the SDXL one
(all official files ship as ``pytorch_lora_weights.safetensors``) is never used by mistake.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lib_lcm.lora_files.header import SafetensorsHeaderError, detect_file
from lib_lcm.rules.architecture import Architecture
from lib_lcm.rules.catalog import LCM_LORA, AccelerationLora, normalise_name
from lib_lcm.rules.settings import Settings


@dataclass(frozen=True)
class LoraLookup:
    entry: AccelerationLora
    path: Path | None
    rejected: tuple[str, ...] = ()  # one sentence per candidate file that was not usable

    @property
    def name(self) -> str | None:
        """The name for the ``<lora:NAME:…>`` tag: the file stem, as the WebUI lists it."""
        return self.path.stem if self.path else None

    def describe(self) -> str:
        if self.path is not None:
            return f"Uses {self.path.name} for {self.entry.architecture.label}."
        reasons = " ".join(self.rejected)
        return (f"Missing: no usable {self.entry.family} file for {self.entry.architecture.label}. "
                f"Download it in the LCM-LoRA tab, or put {self.entry.repo_file} from {self.entry.repo_id} "
                f"into the Lora folder as {self.entry.local_filename}. {reasons}").strip()


def candidate_names(entry: AccelerationLora, settings: Settings) -> list[str]:
    # The per-architecture file settings name the LCM-LoRA file; other families use catalog names.
    chosen = settings.file_name_for(entry.architecture) if entry.family == LCM_LORA else ""
    if chosen:
        return [chosen[: -len(".safetensors")] if chosen.lower().endswith(".safetensors") else chosen]
    return [entry.local_name, *entry.known_names] if settings.accept_known_names else [entry.local_name]


def find_acceleration_lora(entry: AccelerationLora, lora_dirs: Sequence[str | os.PathLike[str]],
                           settings: Settings) -> LoraLookup:
    wanted = [normalise_name(n) for n in candidate_names(entry, settings)]
    files = sorted(_safetensors_files(lora_dirs), key=lambda p: (len(p.parts), str(p)))
    rejected: list[str] = []
    for name in wanted:
        for path in (p for p in files if normalise_name(p.stem) == name):
            problem = _unusable_because(path, entry.architecture)
            if problem is None:
                return LoraLookup(entry, path, tuple(rejected))
            rejected.append(problem)
    return LoraLookup(entry, None, tuple(rejected))


def _unusable_because(path: Path, architecture: Architecture) -> str | None:
    if any(c in path.stem for c in ":<>"):
        return f"{path.name} cannot be named in a prompt tag (':', '<' or '>' in its name)."
    try:
        detection = detect_file(path)
    except SafetensorsHeaderError as error:
        return f"{error}."
    if detection.kind != "lora":
        return f"{path.name} is not a LoRA file."
    if detection.architecture is not architecture:
        return f"{path.name} is for {detection.architecture.label}, not {architecture.label}."
    return None


def _safetensors_files(lora_dirs: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    seen: set[str] = set()
    for top in lora_dirs:
        if not os.path.isdir(top):
            continue
        for root, dirs, files in os.walk(top, followlinks=True):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for file in files:
                path = Path(root, file)
                if path.suffix.lower() == ".safetensors" and str(path) not in seen:
                    seen.add(str(path))
                    yield path
