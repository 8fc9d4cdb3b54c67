"""Download throughput of lib_lcm.downloads.transfer against a raw HTTP read of the same file, side by side.

Both read from the same local server (tests/hub_server.py on 127.0.0.1, in its own process) serving
a file of the SDXL LCM-LoRA's exact size and layout. "raw" streams the CDN URL with requests into a
file; "lib_lcm" is the whole download: resolve, transfer through huggingface_hub, sha256 (on its own
thread), fsync, header and architecture checks, publish. Runs alternate; medians are compared, at
two server speeds: unthrottled loopback (CPU-bound on a 2-core machine: the sha256 the download must
compute competes with the transfer itself) and 100 MB/s (a fast real connection). Goal: ratio >= 0.9.

    .venv/bin/python bench/download_throughput.py [--repeats 5] [--layout lcm-lora-sdxl]
"""
from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import requests  # noqa: E402
from helpers import write_layout  # noqa: E402
from hub_server import FakeHub  # noqa: E402

from lib_lcm.downloads.transfer import download  # noqa: E402
from lib_lcm.rules import catalog  # noqa: E402

ENTRY = {"lcm-lora-sdv1-5": "sd15", "lcm-lora-sdxl": "sdxl", "lcm-lora-ssd-1b": "ssd-1b"}


def raw_read(url: str, target: Path) -> float:
    start = time.perf_counter()
    with requests.get(url, stream=True, timeout=60) as response, target.open("wb") as handle:
        response.raise_for_status()
        for chunk in response.iter_content(chunk_size=1024 * 1024):
            handle.write(chunk)
    return time.perf_counter() - start


def full_download(hub: Any, key: str, folder: Path) -> float:
    start = time.perf_counter()
    download(catalog.by_key(key), folder, endpoint=hub.url)
    return time.perf_counter() - start


def serve(source: str, repo_id: str, repo_file: str, rate: float | None, ready: Any, stop: Any) -> None:
    hub = FakeHub(Path(source).parent)
    hub.add(repo_id, repo_file, Path(source))
    if rate:
        hub.faults["rate"] = rate
    ready.put(hub.url)
    stop.wait()
    hub.close()


def measure(source: Path, entry: Any, rate: float | None, repeats: int, work: Path) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    server = context.Process(target=serve, args=(str(source), entry.repo_id, entry.repo_file, rate, ready, stop))
    server.start()
    try:
        url = ready.get(timeout=60)
        hub = HubAt(url)
        cdn = f"{url}/cdn/{_sha256(source)}"
        raw_times, our_times = [], []
        for i in range(repeats):
            folder = work / f"run{i}"
            folder.mkdir()
            raw_times.append(raw_read(cdn, folder / "raw.bin"))
            our_times.append(full_download(hub, entry.key, folder))
            shutil.rmtree(folder)
        return statistics.median(raw_times), statistics.median(our_times)
    finally:
        stop.set()
        server.join(10)


class HubAt:
    def __init__(self, url: str) -> None:
        self.url = url


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--layout", default="lcm-lora-sdxl", choices=sorted(ENTRY))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lcm-bench-"))
    try:
        source = write_layout(work / "served" / "file.safetensors", args.layout)
        entry = catalog.by_key(ENTRY[args.layout])
        size_mb = source.stat().st_size / 1e6
        print(f"file: {args.layout} layout, {size_mb:.1f} MB; {args.repeats} alternating runs each, medians")
        for label, rate in (("loopback, unthrottled", None), ("server at 100 MB/s", 100e6)):
            raw, ours = measure(source, entry, rate, args.repeats, work)
            print(f"{label:>22}: raw {size_mb / raw:7.1f} MB/s ({raw:.3f} s), lib_lcm {size_mb / ours:7.1f} MB/s "
                  f"({ours:.3f} s), ratio {raw / ours:.2f} (goal >= 0.9)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
