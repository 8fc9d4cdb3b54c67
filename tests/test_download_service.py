"""The download service, the background jobs and the HTTP endpoints, against the local hub server."""
from __future__ import annotations

import functools
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from helpers import write_layout

from lib_lcm.downloads.http_api import register_routes
from lib_lcm.downloads.jobs import Jobs
from lib_lcm.downloads.service import DownloadService
from lib_lcm.downloads.tab import _view, primary, render_row, safe_report
from lib_lcm.downloads.transfer import Retries, download
from lib_lcm.rules import catalog
from lib_lcm.rules.architecture import Architecture


@pytest.fixture
def refreshed():
    return []


@pytest.fixture
def service(hub, lora_dir, refreshed):
    return DownloadService(lora_dir=lambda: lora_dir, loaded=lambda: (Architecture.SDXL, "xl.safetensors [abc]"),
                           endpoint=lambda: hub.url, jobs=Jobs(after_download=refreshed.append))


@pytest.fixture
def client(service):
    app = FastAPI()
    register_routes(app, service)
    return TestClient(app)


def wait_done(service, key, timeout=30):
    state = service.jobs.wait(key, timeout)
    assert state is not None and state.state != "running"
    return state


def entry_of(report, key):
    return next(e for e in report["entries"] if e["key"] == key)


# --- service and jobs -----------------------------------------------------------------------------

def test_auto_picks_the_loaded_architecture(service):
    assert service.entry_for("auto").key == "sdxl"
    service.loaded = lambda: (Architecture.SD2, "v2.safetensors")
    with pytest.raises(Exception, match=r"SD 2\.x") as caught:
        service.entry_for("auto")
    assert caught.value.kind == "unsupported"


def test_job_downloads_in_the_background_and_refreshes_the_lora_list(service, lora_dir, refreshed):
    job = service.start("sd15")
    assert job.state == "running"
    final = wait_done(service, "sd15")
    assert final.state == "done" and final.percent == 100.0
    assert refreshed == [lora_dir / "lcm-lora-sdv1-5.safetensors"]


def test_a_retry_shows_in_the_job_and_in_the_console(hub, lora_dir):
    console = []
    service = DownloadService(lora_dir=lambda: lora_dir, endpoint=lambda: hub.url, jobs=Jobs(log=console.append))
    hub.script("cdn", ("status", 503))
    hub.faults["rate"] = 4 * 1024 * 1024
    service.start("sd15")
    deadline = time.monotonic() + 10
    while "trying again" not in service.jobs.get("sd15").message and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.jobs.get("sd15").message == "The server answered HTTP 503; trying again in 1 s (retry 1 of 4)."
    assert wait_done(service, "sd15").state == "done"
    assert console == ["lcm-lora-sdv1-5.safetensors: The server answered HTTP 503; trying again in 1 s (retry 1 of 4)."]


def test_a_second_start_while_running_is_told(service, hub):
    hub.faults["rate"] = 2 * 1024 * 1024
    service.start("sd15")
    with pytest.raises(Exception, match="already being downloaded") as caught:
        service.start("sd15")
    assert caught.value.kind == "busy"
    assert service.cancel("sd15")
    assert wait_done(service, "sd15").state == "cancelled"


def test_status_report_states(service, lora_dir):
    write_layout(lora_dir / "lcm-lora-ssd-1b.safetensors", "lcm-lora-sdv1-5")  # wrong architecture, user's file
    (lora_dir / "lcm-lora-sdxl.safetensors").write_bytes(b"garbage")
    report = service.report()
    assert report["loaded"] == {"architecture": "sdxl", "label": "SDXL", "title": "xl.safetensors [abc]", "key": "sdxl"}
    assert entry_of(report, "sd15")["state"] == "missing"
    assert entry_of(report, "sdxl")["state"] == "corrupt" and entry_of(report, "sdxl")["matches_loaded_checkpoint"]
    assert entry_of(report, "ssd-1b")["state"] == "different"
    assert "holds a SD 1.5 lora" in entry_of(report, "ssd-1b")["message"]
    service.start("sd15")
    wait_done(service, "sd15")
    assert entry_of(service.report(), "sd15")["state"] == "verified"
    assert entry_of(service.report(), "sd15")["used_file"] == "lcm-lora-sdv1-5.safetensors"


def test_a_download_click_on_a_different_file_is_remembered_offline(service, lora_dir):
    from helpers import tiny_lora_bytes

    (lora_dir / "lcm-lora-sdv1-5.safetensors").write_bytes(tiny_lora_bytes("lcm-lora-sdv1-5", seed=3))
    assert "size" in entry_of(service.report(), "sd15")["message"]  # before: only the size could tell
    service.start("sd15")
    assert wait_done(service, "sd15").error_kind == "exists_different"
    item = entry_of(service.report(), "sd15")
    assert item["state"] == "different" and "sha256 differs" in item["message"]


def test_partial_download_shows_in_the_status(service, hub):
    hub.script("cdn", ("drop", 1024 * 1024 + 10), *[("hangup",)] * 2)  # cut, then down for both retries
    service.jobs = Jobs(downloader=functools.partial(download, retries=Retries(2, 0.01)))
    service.start("sd15")
    assert wait_done(service, "sd15").state == "failed"
    item = entry_of(service.report(), "sd15")
    assert item["state"] == "partial" and item["partial_bytes"] == 1024 * 1024
    assert "resume" in item["job"]["message"]


def test_the_tab_puts_what_the_checkpoint_needs_first_and_one_action_per_row(service, hub):
    card, button, _message, table, folder = _view(service, "")
    assert "It needs <b>LCM-LoRA for SDXL</b>: <code>lcm-lora-sdxl.safetensors</code>, 394\u00a0MB" in card
    assert (button["value"], button["visible"], button["variant"]) == ("Download", True, "primary")
    assert table.count("<tr id='lcm_lora_row_") == len(catalog.CATALOG)
    assert "latent-consistency/lcm-lora-sdv1-5" in table
    assert table.count("recommended</span>") == 1 and "fits SDXL</span>" in table and "fits SD 1.5" not in table
    assert "lcm_lora_cancel_" not in table and table.count(">Download</button>") == len(catalog.CATALOG)
    assert str(service.lora_dir()) in folder
    sdxl = render_row(safe_report(service), "sdxl", "sdxl")
    assert "LCM-LoRA<span class='lcm-lora-tag lcm-lora-recommended'" in sdxl
    assert "id='lcm_lora_save_as_sdxl'" in sdxl  # "Save as…" beside the file name it replaces
    lightning = render_row(safe_report(service), "lightning-sdxl")
    assert "SDXL-Lightning" in lightning and "ByteDance/SDXL-Lightning" in lightning
    assert "sdxl_lightning_4step_lora.safetensors" in lightning and "about 394\u00a0MB" in lightning
    # the recommended entry follows the accordion's preset
    assert primary(safe_report(service), "DMD2").key == "dmd2-sdxl"
    assert "recommended" in render_row(safe_report(service), "dmd2-sdxl", "dmd2-sdxl")
    hub.faults["rate"] = 1024 * 1024
    service.start("sdxl")
    time.sleep(1.0)
    running = render_row(safe_report(service), "sdxl")
    assert "data-lcm-lora-state='running'" in running and "<progress" in running and "MB/s" in running
    assert ">Cancel</button>" in running and ">Download</button>" not in running and "Save as" not in running
    card, button, *_ = _view(service, "")
    assert "Downloading" in card and (button["value"], button["variant"]) == ("Cancel download", "secondary")
    service.cancel("sdxl")
    wait_done(service, "sdxl")
    cancelled = render_row(safe_report(service), "sdxl")
    assert "Cancelled" in cancelled and ">Resume</button>" in cancelled
    assert primary(safe_report(service), "LCM-LoRA").button == "Resume download"


def test_the_card_when_nothing_is_there_to_get(service, lora_dir):
    service.loaded = lambda: (Architecture.SD2, "v2.safetensors [def]")
    first = primary(safe_report(service), "LCM-LoRA")
    assert first.button == "" and "not for SD 2.x" in first.html
    service.loaded = lambda: (Architecture.SD1, "v1.safetensors [abc]")
    first = primary(safe_report(service), "DMD2")
    assert first.button == "" and "DMD2 exists only for SDXL, not for SD 1.5" in first.html
    write_layout(lora_dir / "lcm-lora-sdv1-5.safetensors", "lcm-lora-sdv1-5")
    first = primary(safe_report(service), "LCM-LoRA")  # there, but not yet checked against the hub
    assert "Ready: the accordion uses <code>lcm-lora-sdv1-5.safetensors</code>" in first.html
    assert first.button == "Verify" and ">Verify</button>" in render_row(safe_report(service), "sd15")
    service.loaded = lambda: (Architecture.UNKNOWN, "")
    assert "No checkpoint is loaded yet" in primary(safe_report(service), "LCM-LoRA").html


def test_the_tab_renders_even_when_the_folder_cannot_be_read():
    def broken() -> None:
        raise OSError("the drive is gone")

    card, button, _message, table, _folder = _view(DownloadService(lora_dir=broken), "")
    assert "Cannot read the Lora folder: the drive is gone" in card and button["visible"] is False
    assert table.count("status unavailable") == len(catalog.CATALOG)


# --- HTTP API -------------------------------------------------------------------------------------

def test_status_endpoint(client):
    response = client.get("/lcm-lora/v1/status")
    assert response.status_code == 200
    body = response.json()
    assert [e["key"] for e in body["entries"]] == ["sd15", "sdxl", "ssd-1b", "tcd-sd15", "tcd-sdxl", "hyper-sd15",
                                                   "hyper-sdxl", "lightning-sdxl", "dmd2-sdxl"]
    assert {e["local_file"] for e in body["entries"]} >= {
        "lcm-lora-sdv1-5.safetensors", "lcm-lora-sdxl.safetensors", "lcm-lora-ssd-1b.safetensors"}
    assert {e["family"] for e in body["entries"]} == set(catalog.FAMILIES)


def test_download_endpoint_waiting_for_the_result(client, lora_dir):
    response = client.post("/lcm-lora/v1/download", json={"key": "auto", "wait": True})
    assert response.status_code == 200, response.text
    assert response.json()["job"]["state"] == "done"
    assert (lora_dir / "lcm-lora-sdxl.safetensors").exists()
    again = client.post("/lcm-lora/v1/download", json={"key": "sdxl", "wait": True})
    assert again.status_code == 200 and "already present" in again.json()["message"]


def test_download_endpoint_in_the_background(client, service):
    response = client.post("/lcm-lora/v1/download", json={"key": "ssd-1b"})
    assert response.status_code == 202 and response.json()["job"]["state"] == "running"
    wait_done(service, "ssd-1b")
    assert entry_of(client.get("/lcm-lora/v1/status").json(), "ssd-1b")["job"]["state"] == "done"


@pytest.mark.parametrize(("body", "status", "kind"), [
    ({"key": "sd3"}, 400, "invalid_key"),
    ({}, 400, "bad_request"),
    ({"key": 5}, 400, "bad_request"),
    ({"key": "sd15", "name": "../x"}, 400, "invalid_name"),
    ({"key": "sd15", "name": 3}, 400, "bad_request"),
    ({"key": "sd15", "wait": "yes"}, 400, "bad_request"),
])
def test_bad_requests_get_a_clear_4xx(client, body, status, kind):
    response = client.post("/lcm-lora/v1/download", json=body)
    assert response.status_code == status and response.json()["error"] == kind
    assert response.json()["message"]


def test_errors_of_the_transfer_map_to_http_statuses(client, hub, lora_dir):
    (lora_dir / "lcm-lora-sdv1-5.safetensors").write_bytes(b"mine")
    response = client.post("/lcm-lora/v1/download", json={"key": "sd15", "wait": True})
    assert response.status_code == 409 and response.json()["error"] == "corrupt_present"
    hub.faults["resolve_status"] = 403
    response = client.post("/lcm-lora/v1/download", json={"key": "sdxl", "wait": True})
    assert response.status_code == 403 and "HF_TOKEN" in response.json()["message"]


def test_json_that_is_not_an_object(client):
    response = client.post("/lcm-lora/v1/download", content=b"[1,2]", headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500


def test_cancel_endpoint(client, hub, service):
    hub.faults["rate"] = 1024 * 1024
    client.post("/lcm-lora/v1/download", json={"key": "sdxl"})
    assert client.post("/lcm-lora/v1/cancel", json={"key": "sdxl"}).json() == {"ok": True, "cancelled": True}
    assert wait_done(service, "sdxl").state == "cancelled"
    assert client.post("/lcm-lora/v1/cancel", json={"key": "sdxl"}).json()["cancelled"] is False
