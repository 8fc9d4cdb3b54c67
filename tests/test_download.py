"""lib_lcm.downloads.transfer against a real HTTP server on 127.0.0.1 speaking the hub's resolve protocol."""
from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import catalog_bytes, tiny_lora_bytes

from lib_lcm.downloads.errors import DownloadError
from lib_lcm.downloads.transfer import CHUNK, Retries, download, validate_file_name
from lib_lcm.lora_files.work_folder import CHECKSUMS_FILE, WORK_DIR, part_path, read_checksums
from lib_lcm.rules import catalog

FAST = Retries(attempts=2, first_wait_s=0.01)  # the retry schedule, shortened for tests
SD15 = catalog.by_key("sd15")
SDXL = catalog.by_key("sdxl")
SSD = catalog.by_key("ssd-1b")


@pytest.fixture(autouse=True)
def official(hub):
    """Every test starts with the three official repos served (catalog key -> what the hub serves)."""
    return {entry.key: hub.files[(entry.repo_id, entry.repo_file)] for entry in catalog.CATALOG}


def _bytes(key: str) -> bytes:
    return catalog_bytes(key)


def visible_files(folder: Path) -> list[str]:
    """What the WebUI's Lora scanner could pick up."""
    return sorted(p.name for p in folder.rglob("*") if p.suffix.lower() in (".safetensors", ".pt", ".ckpt"))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}


# --- the happy path ------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["sd15", "sdxl", "ssd-1b"])
def test_downloads_verifies_and_names_each_official_file(hub, lora_dir, key):
    entry = catalog.by_key(key)
    result = download(entry, lora_dir, endpoint=hub.url)
    final = lora_dir / entry.local_filename
    assert result.state == "downloaded" and result.path == final
    assert final.read_bytes() == _bytes(key)
    assert result.sha256 == hashlib.sha256(_bytes(key)).hexdigest()
    assert visible_files(lora_dir) == [entry.local_filename]
    assert not list(lora_dir.rglob("*.part"))
    assert read_checksums(lora_dir)[entry.local_filename]["official_sha256"] == result.sha256


def test_the_scanner_never_sees_a_half_file_and_progress_is_reported(hub, lora_dir):
    hub.faults["rate"] = 4 * 1024 * 1024  # ~0.5 s for the tiny SD 1.5 file
    seen, progress = [], []

    def on_progress(p):
        progress.append(p)
        seen.append(visible_files(lora_dir))

    download(SD15, lora_dir, endpoint=hub.url, on_progress=on_progress)
    assert all(files == [] for files in seen) and len(seen) >= 3
    assert progress[-1].done == progress[-1].total == len(_bytes("sd15"))
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    assert any(p.bytes_per_second > 0 for p in progress[1:])


def test_endpoint_and_token_come_from_the_environment(hub, lora_dir, monkeypatch):
    hub.faults["token"] = "hf_secret"
    with pytest.raises(DownloadError) as caught:
        download(SD15, lora_dir, endpoint=hub.url)
    # huggingface_hub < 0.20 calls every 401 "repository not found"; both messages say to set HF_TOKEN
    assert caught.value.kind in ("auth", "not_found") and "HF_TOKEN" in caught.value.message
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    hub.log.clear()
    assert download(SD15, lora_dir).state == "downloaded"
    assert [r.headers.get("authorization") for r in hub.requests_to("resolve")] == ["Bearer hf_secret"]


def test_explicit_token(hub, lora_dir):
    hub.faults["token"] = "hf_x"
    assert download(SD15, lora_dir, endpoint=hub.url, token="hf_x").state == "downloaded"


def test_a_chosen_name(hub, lora_dir):
    result = download(SD15, lora_dir, endpoint=hub.url, name="my-lcm")
    assert result.path.name == "my-lcm.safetensors" and visible_files(lora_dir) == ["my-lcm.safetensors"]


# --- files already there --------------------------------------------------------------------------

def test_the_same_file_already_present_is_not_downloaded_again(hub, lora_dir):
    download(SD15, lora_dir, endpoint=hub.url)
    hub.log.clear()
    result = download(SD15, lora_dir, endpoint=hub.url)
    assert result.state == "already present" and "matches the official file" in result.message
    assert hub.requests_to("cdn") == []


def test_a_different_file_under_the_name_is_kept_untouched(hub, lora_dir):
    mine = lora_dir / "lcm-lora-sdv1-5.safetensors"
    mine.write_bytes(tiny_lora_bytes("lcm-lora-sdv1-5", seed=7))
    before = snapshot(lora_dir)
    with pytest.raises(DownloadError) as caught:
        download(SD15, lora_dir, endpoint=hub.url)
    assert caught.value.kind == "exists_different"
    assert "left untouched" in caught.value.message and "lcm-lora-sdv1-5-official.safetensors" in caught.value.message
    assert snapshot(lora_dir) == before and hub.requests_to("cdn") == []
    assert download(SD15, lora_dir, endpoint=hub.url, name="lcm-lora-sdv1-5-official").state == "downloaded"
    assert mine.read_bytes() == before["lcm-lora-sdv1-5.safetensors"]


@pytest.mark.parametrize("content", [b"", b"not safetensors at all", None])
def test_a_corrupt_or_truncated_file_present_is_reported_and_kept(hub, lora_dir, content):
    mine = lora_dir / "lcm-lora-sdv1-5.safetensors"
    mine.write_bytes(_bytes("sd15")[:-100] if content is None else content)
    before = snapshot(lora_dir)
    with pytest.raises(DownloadError) as caught:
        download(SD15, lora_dir, endpoint=hub.url)
    assert caught.value.kind == "corrupt_present" and "left untouched" in caught.value.message
    assert snapshot(lora_dir) == before


# --- names ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "sub/dir", "a:b", ".hidden", "..", "x\ny", "a<b>",
                                  "C:\\x", "x" * 250])
def test_bad_names_are_refused_before_anything_happens(hub, lora_dir, name):
    with pytest.raises(DownloadError) as caught:
        download(SD15, lora_dir, endpoint=hub.url, name=name)
    assert caught.value.kind == "invalid_name"
    assert hub.log == [] and list(lora_dir.iterdir()) == []


def test_good_names():
    assert validate_file_name("lcm-lora-sdxl") == "lcm-lora-sdxl.safetensors"
    assert validate_file_name("My LCM v1.safetensors") == "My LCM v1.safetensors"


def test_a_bad_repo_id_in_the_catalog_is_refused(hub, lora_dir):
    with pytest.raises(DownloadError, match="not a Hugging Face repository id"):
        download(dataclasses.replace(SD15, repo_id="../../etc"), lora_dir, endpoint=hub.url)


# --- the server and the network ------------------------------------------------------------------

def test_offline_mode_refuses_without_any_request(hub, lora_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError) as caught:
        download(SD15, lora_dir, endpoint=hub.url)
    assert caught.value.kind == "offline" and "HF_HUB_OFFLINE" in caught.value.message
    assert hub.log == []


def test_missing_file_repo_and_revision(hub, lora_dir):
    missing_file = dataclasses.replace(SD15, repo_file="nope.safetensors")
    with pytest.raises(DownloadError) as caught:
        download(missing_file, lora_dir, endpoint=hub.url)
    assert caught.value.kind == "not_found" and "HTTP 404" in caught.value.message
    with pytest.raises(DownloadError) as caught:
        download(dataclasses.replace(SD15, repo_id="someone/unknown"), lora_dir, endpoint=hub.url)
    assert caught.value.kind == "not_found" and "private" in caught.value.message
    with pytest.raises(DownloadError) as caught:
        download(SD15, lora_dir, endpoint=hub.url, revision="v999")
    assert caught.value.kind == "not_found" and "revision" in caught.value.message


def test_forbidden(hub, lora_dir):
    hub.faults["resolve_status"] = 403
    with pytest.raises(DownloadError) as caught:
        download(SD15, lora_dir, endpoint=hub.url)
    assert caught.value.kind == "auth" and "HTTP 403" in caught.value.message


@pytest.mark.parametrize("where", ["resolve_status", "cdn_status"])
def test_server_errors_that_are_not_retried(hub, lora_dir, where):
    hub.faults[where] = 507
    with pytest.raises(DownloadError) as caught:
        download(SD15, lora_dir, endpoint=hub.url)
    assert caught.value.kind == "server" and "HTTP 507" in caught.value.message
    assert visible_files(lora_dir) == []


@pytest.mark.parametrize("where", ["resolve_status", "cdn_status"])
def test_a_503_is_retried_in_our_words_then_explained(hub, lora_dir, where, caplog):
    hub.faults[where] = 503
    said = []
    with pytest.raises(DownloadError) as caught:
        download(SD15, lora_dir, endpoint=hub.url, on_retry=said.append, retries=FAST)
    assert caught.value.kind == "server" and "HTTP 503" in caught.value.message and "try again" in caught.value.message
    assert said == ["The server answered HTTP 503; trying again in 0.01 s (retry 1 of 2).",
                    "The server answered HTTP 503; trying again in 0.02 s (retry 2 of 2)."]
    assert len(hub.requests_to("cdn" if where == "cdn_status" else "resolve")) == 3
    assert not [r for r in caplog.records if r.name.startswith("huggingface_hub")]  # no hub retry warnings


@pytest.mark.parametrize("kind", ["resolve", "cdn"])
def test_a_passing_server_error_or_hangup_costs_one_retry(hub, lora_dir, kind):
    hub.script(kind, ("status", 502), ("hangup",))
    said = []
    result = download(SD15, lora_dir, endpoint=hub.url, on_retry=said.append, retries=Retries(3, 0.01))
    assert result.state == "downloaded" and result.path.read_bytes() == _bytes("sd15")
    assert said[0].startswith("The server answered HTTP 502;") and said[1].startswith("The connection failed (")
    assert len(said) == 2


def test_a_cancel_during_a_retry_wait_ends_at_once(hub, lora_dir):
    hub.faults["cdn_status"] = 503
    cancel = threading.Event()
    started = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        download(SD15, lora_dir, endpoint=hub.url, retries=Retries(3, 30.0), cancel=cancel,
                 on_retry=lambda _: cancel.set())
    assert caught.value.kind == "cancelled" and time.monotonic() - started < 10


def test_no_network(lora_dir):
    with pytest.raises(DownloadError) as caught:
        download(SD15, lora_dir, endpoint="http://127.0.0.1:9", retries=FAST)  # discard port: nothing listens
    assert caught.value.kind == "network" and "Cannot reach 127.0.0.1:9" in caught.value.message
    assert visible_files(lora_dir) == [] and not list(lora_dir.rglob("*.part"))


def test_a_connection_that_keeps_dropping_is_resumed_within_the_download(hub, lora_dir):
    hub.faults["drop_after"] = CHUNK + 1000  # every answer breaks after one whole chunk and a bit
    said, once = [], Retries(attempts=1, first_wait_s=0.01)
    result = download(SD15, lora_dir, endpoint=hub.url, on_retry=said.append, retries=once)
    assert result.state == "downloaded" and result.path.read_bytes() == _bytes("sd15")
    ranges = [r.headers.get("range") for r in hub.requests_to("cdn")]
    # more tries than one retry allows: each broken answer brought bytes, so the count restarts
    assert ranges == [f"bytes={i * CHUNK}-" for i in range(len(ranges))] and len(ranges) > once.attempts + 1
    assert len(said) == len(ranges) - 1 and all("retry 1 of 1" in line for line in said)


def test_a_dropped_connection_that_stays_down_keeps_what_arrived_and_resumes_later(hub, lora_dir, official):
    hub.script("cdn", ("drop", CHUNK + 1000), ("hangup",), ("hangup",), ("hangup",))
    with pytest.raises(DownloadError) as caught:
        download(SD15, lora_dir, endpoint=hub.url, retries=FAST)
    assert caught.value.kind == "dropped" and "resume" in caught.value.message and "1.0 of" in caught.value.message
    part = part_path(lora_dir / SD15.local_filename, official["sd15"].sha256)
    assert part.stat().st_size == CHUNK  # whole chunks only: the broken one is not kept
    assert visible_files(lora_dir) == []
    hub.scripts.clear()
    hub.log.clear()
    result = download(SD15, lora_dir, endpoint=hub.url)
    assert result.state == "downloaded" and result.path.read_bytes() == _bytes("sd15")
    assert [r.headers.get("range") for r in hub.requests_to("cdn")] == [f"bytes={CHUNK}-"]
    assert not part.exists()


def test_a_server_that_ignores_the_range_still_gives_the_right_file(hub, lora_dir):
    hub.script("cdn", ("drop", CHUNK + 1000))
    hub.faults["ignore_range"] = True
    result = download(SD15, lora_dir, endpoint=hub.url, retries=FAST)
    assert result.state == "downloaded" and result.path.read_bytes() == _bytes("sd15")
    assert len(hub.requests_to("cdn")) == 2


def test_the_token_goes_to_the_hub_but_not_to_a_cdn_on_another_host(hub, lora_dir):
    hub.faults.update(token="hf_x", cdn_host="localhost")
    assert download(SD15, lora_dir, endpoint=hub.url, token="hf_x").state == "downloaded"
    assert [r.headers.get("authorization") for r in hub.requests_to("resolve")] == ["Bearer hf_x"]
    assert [r.headers.get("authorization") for r in hub.requests_to("cdn")] == [None]


def test_corrupted_bytes_are_caught_by_the_checksum_and_discarded(hub, lora_dir):
    hub.faults["corrupt"] = True
    with pytest.raises(DownloadError) as caught:
        download(SD15, lora_dir, endpoint=hub.url)
    assert caught.value.kind == "checksum" and "discarded" in caught.value.message
    assert list(lora_dir.rglob("*.part")) == []
    assert visible_files(lora_dir) == []


def test_a_file_of_the_wrong_architecture_is_discarded(hub, lora_dir):
    hub.add(SD15.repo_id, SD15.repo_file, _bytes("sdxl"))  # a mix-up on the server side
    with pytest.raises(DownloadError) as caught:
        download(SD15, lora_dir, endpoint=hub.url)
    assert caught.value.kind == "wrong_architecture" and "SDXL lora file, not a SD 1.5 LoRA" in caught.value.message
    assert visible_files(lora_dir) == []


def test_a_server_without_checksum_is_refused(hub, lora_dir):
    hub.faults["no_etag"] = True
    with pytest.raises(DownloadError, match="could not be verified"):
        download(SD15, lora_dir, endpoint=hub.url)


# --- the local disk ------------------------------------------------------------------------------

def test_disk_full_while_writing(hub, lora_dir, official):
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    part = part_path(lora_dir / SD15.local_filename, official["sd15"].sha256)
    part.parent.mkdir()
    part.symlink_to("/dev/full")  # every write to it fails with ENOSPC, as on a full disk
    with pytest.raises(DownloadError) as caught:
        download(SD15, lora_dir, endpoint=hub.url)
    assert caught.value.kind == "disk_full" and "full" in caught.value.message
    assert visible_files(lora_dir) == []


def test_not_enough_space_is_said_before_downloading(hub, lora_dir, monkeypatch):
    import shutil as shutil_module

    real = shutil_module.disk_usage
    monkeypatch.setattr(shutil_module, "disk_usage", lambda p: real(p)._replace(free=1000))
    with pytest.raises(DownloadError) as caught:
        download(SD15, lora_dir, endpoint=hub.url)
    assert caught.value.kind == "disk_full" and "MB needed" in caught.value.message
    assert hub.requests_to("cdn") == []


@contextmanager
def unwritable(folder: Path):
    """Make ``folder`` really unwritable: permissions for a normal user; as root (who ignores them), the
    immutable attribute or, failing that, a read-only tmpfs. Skips when none is possible here."""
    if os.geteuid() != 0:
        os.chmod(folder, 0o555)
        try:
            yield "EACCES"
        finally:
            os.chmod(folder, 0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        try:
            yield "EPERM"
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        return
    pytest.skip("running as root without chattr +i: cannot make a folder unwritable")


def test_read_only_folder(hub, lora_dir):
    (lora_dir / "mine.safetensors").write_bytes(b"user data")
    with unwritable(lora_dir), pytest.raises(DownloadError) as caught:
        download(SD15, lora_dir, endpoint=hub.url)
    assert caught.value.kind == "read_only" and "not writable" in caught.value.message
    assert sorted(p.name for p in lora_dir.iterdir()) == ["mine.safetensors"]
    assert (lora_dir / "mine.safetensors").read_bytes() == b"user data"
    assert hub.log == []


def test_read_only_file_system(hub, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a read-only tmpfs needs root here")
    try:
        with pytest.raises(DownloadError) as caught:
            download(SD15, folder, endpoint=hub.url)
    finally:
        subprocess.run(["umount", str(folder)], check=True)
    assert caught.value.kind == "read_only" and "Read-only file system" in caught.value.message


# --- concurrency and cancel ----------------------------------------------------------------------

def test_two_downloads_of_the_same_file_one_wins_the_other_is_told(hub, lora_dir):
    hub.faults["rate"] = 4 * 1024 * 1024
    results, errors = [], []

    def run():
        try:
            results.append(download(SD15, lora_dir, endpoint=hub.url))
        except DownloadError as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join(30)
    assert len(results) == 1 and len(errors) == 1
    assert errors[0].kind == "busy" and "already being downloaded" in errors[0].message
    assert (lora_dir / SD15.local_filename).read_bytes() == _bytes("sd15")


def test_different_files_download_side_by_side(hub, lora_dir):
    hub.faults["rate"] = 8 * 1024 * 1024
    threads = [threading.Thread(target=download, args=(e, lora_dir), kwargs={"endpoint": hub.url})
               for e in (SD15, SSD)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert visible_files(lora_dir) == ["lcm-lora-sdv1-5.safetensors", "lcm-lora-ssd-1b.safetensors"]


def test_cancel_keeps_the_part_and_a_later_download_resumes(hub, lora_dir, official):
    hub.faults["rate"] = 2 * 1024 * 1024
    cancel = threading.Event()

    def on_progress(p):
        if p.done >= 1024 * 1024:
            cancel.set()

    with pytest.raises(DownloadError) as caught:
        download(SD15, lora_dir, endpoint=hub.url, on_progress=on_progress, cancel=cancel)
    assert caught.value.kind == "cancelled" and "resume" in caught.value.message
    part = part_path(lora_dir / SD15.local_filename, official["sd15"].sha256)
    assert part.stat().st_size >= 1024 * 1024 and visible_files(lora_dir) == []
    hub.faults.clear()
    assert download(SD15, lora_dir, endpoint=hub.url).path.read_bytes() == _bytes("sd15")


def test_a_part_of_an_older_revision_is_dropped(hub, lora_dir, official):
    stale = part_path(lora_dir / SD15.local_filename, "f" * 64)
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    download(SD15, lora_dir, endpoint=hub.url)
    assert not stale.exists()


def test_our_bookkeeping_stays_in_one_hidden_folder(hub, lora_dir):
    download(SD15, lora_dir, endpoint=hub.url)
    assert (lora_dir / WORK_DIR / CHECKSUMS_FILE).exists() and WORK_DIR.startswith(".")
    assert sorted(p.name for p in lora_dir.iterdir()) == [".lcm-lora", "lcm-lora-sdv1-5.safetensors"]
