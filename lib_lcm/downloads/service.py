"""What the tab, the HTTP API and the command line share: which entry a request means, starting and
cancelling jobs, and one status report of every catalog entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib_lcm.downloads.errors import DownloadError
from lib_lcm.downloads.jobs import Jobs, JobState
from lib_lcm.downloads.transfer import validate_file_name
from lib_lcm.lora_files.finding import find_acceleration_lora
from lib_lcm.lora_files.status import file_status
from lib_lcm.rules import catalog
from lib_lcm.rules.architecture import Architecture, unsupported_reason
from lib_lcm.rules.catalog import AccelerationLora
from lib_lcm.rules.settings import Settings

AUTO = "auto"


def _no_model() -> tuple[Architecture, str]:
    return Architecture.UNKNOWN, ""


@dataclass
class DownloadService:
    lora_dir: Callable[[], Path]
    lora_dirs: Callable[[], list[str]] | None = None  # every folder the WebUI scans; default: lora_dir
    loaded: Callable[[], tuple[Architecture, str]] = _no_model  # (architecture, checkpoint title)
    endpoint: Callable[[], str | None] = lambda: None
    settings: Callable[[], Settings] = Settings
    jobs: Jobs = field(default_factory=Jobs)

    def entry_for(self, key: str) -> AccelerationLora:
        """A catalog key, or "auto" for the loaded checkpoint's architecture."""
        if not isinstance(key, str) or not key.strip():
            raise DownloadError("invalid_key", f"Choose one of {', '.join(catalog.all_keys())} or {AUTO}.")
        if key.strip().lower() == AUTO:
            architecture, title = self.loaded()
            entry = catalog.for_architecture(architecture)
            if entry is None:
                model = f"The loaded checkpoint {title} is {architecture.label}" if title else "No checkpoint is loaded"
                raise DownloadError("unsupported", f"{model}: {unsupported_reason(architecture)}")
            return entry
        entry = catalog.by_key(key)
        if entry is None:
            choices = ", ".join(catalog.all_keys())
            raise DownloadError("invalid_key", f"{key!r} is not in the catalog; choose one of {choices} or {AUTO}.")
        return entry

    def start(self, key: str, name: str | None = None) -> JobState:
        entry = self.entry_for(key)
        if name:
            name = validate_file_name(name)
        return self.jobs.start(entry, self.lora_dir(), name=name or None, endpoint=self.endpoint())

    def cancel(self, key: str) -> bool:
        return self.jobs.cancel(self.entry_for(key).key)

    def report(self) -> dict[str, Any]:
        folder = self.lora_dir()
        architecture, title = self.loaded()
        jobs = self.jobs.snapshot()
        return {
            "lora_dir": str(folder),
            "loaded": {"architecture": architecture.value, "label": architecture.label, "title": title,
                       "key": getattr(catalog.for_architecture(architecture), "key", None)},
            "entries": [self._entry_report(entry, folder, architecture, jobs.get(entry.key))
                        for entry in catalog.CATALOG],
        }

    def _entry_report(self, entry: AccelerationLora, folder: Path, loaded: Architecture,
                      job: JobState | None) -> dict[str, Any]:
        status = file_status(entry, folder)
        used = find_acceleration_lora(entry, (self.lora_dirs or (lambda: [str(folder)]))(), self.settings())
        return {
            "key": entry.key, "family": entry.family, "architecture": entry.architecture.label,
            "repo_id": entry.repo_id, "repo_file": entry.repo_file, "url": entry.url,
            "local_file": entry.local_filename, "size_bytes": entry.size_bytes, "approx_size": entry.approx_size,
            "state": status.state, "message": status.message, "partial_bytes": status.partial_bytes,
            "used_file": used.path.name if used.path else None,
            "matches_loaded_checkpoint": entry.architecture is loaded,
            "job": job.as_dict() if job else None,
        }
