"""The LCM-LoRA tab and /lcm-lora/v1 endpoints as the WebUI registers them (stand-ins + local hub)."""
import sys

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from webui_env import STAND_INS


@pytest.fixture
def wired(webui, hub, monkeypatch):
    """The WebUI after start: shared.hf_endpoint pointing at the local hub, the builtin Lora module loaded."""
    from modules import script_callbacks, shared

    import lib_lcm.webui.downloads as downloads

    monkeypatch.setattr(downloads, "_service", None)
    monkeypatch.setattr(shared, "hf_endpoint", hub.url)
    monkeypatch.syspath_prepend(str(STAND_INS))
    import networks

    monkeypatch.setitem(sys.modules, "networks", networks)
    monkeypatch.setattr(networks, "rescans", 0)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    app = FastAPI()
    script_callbacks.app_started_callback(None, app)
    return app, networks


def test_the_tab_is_registered(webui):
    from modules import script_callbacks

    [(blocks, title, elem_id)] = script_callbacks.ui_tabs_callback()
    assert (title, elem_id) == ("LCM-LoRA", "lcm_lora")
    ids = {block.elem_id: block for block in blocks.blocks.values() if getattr(block, "elem_id", None)}
    assert {"lcm_lora_download_auto", "lcm_lora_downloads_refresh", "lcm_lora_catalog", "lcm_lora_action_run",
            "lcm_lora_action", "lcm_lora_preset_in_use"} <= set(ids)
    # one gradio button acts on the loaded checkpoint's file; the rows' buttons are HTML in the table
    table = ids["lcm_lora_catalog"].value
    assert {"id='lcm_lora_download_sd15'", "id='lcm_lora_download_sdxl'", "id='lcm_lora_download_ssd_1b'"} <= {
        part for part in table.replace(" data-", "\n").replace(" class=", "\n").split() if part.startswith("id=")}
    assert "lcm_lora_cancel_" not in table  # nothing runs


def test_routes_are_added_once_even_after_reload_ui(wired):
    from modules import script_callbacks

    app, _ = wired
    before = len(app.routes)
    script_callbacks.app_started_callback(None, app)
    assert len(app.routes) == before
    assert {r.path for r in app.routes} >= {"/lcm-lora/v1/status", "/lcm-lora/v1/download", "/lcm-lora/v1/cancel"}


def test_download_for_the_loaded_checkpoint_makes_it_usable_at_once(wired, webui):
    from lib_lcm.webui import status_html

    app, networks = wired
    assert "Missing" in status_html() and "LCM-LoRA tab" in status_html()
    response = TestClient(app).post("/lcm-lora/v1/download", json={"key": "auto", "wait": True})
    assert response.status_code == 200, response.text
    assert (webui.lora_dir / "lcm-lora-sdv1-5.safetensors").exists()
    assert networks.rescans == 1  # the builtin's list was refreshed
    assert "Uses lcm-lora-sdv1-5.safetensors" in status_html()
    p, _ = webui.txt2img([True, 1.0, 4, 1.0])
    assert p.sampled[0].loras == [("lcm-lora-sdv1-5", ["1"])]


def test_status_endpoint_knows_the_loaded_checkpoint(wired):
    app, _ = wired
    body = TestClient(app).get("/lcm-lora/v1/status").json()
    assert body["loaded"]["key"] == "sd15" and body["loaded"]["title"].startswith("checkpoint-sd15.safetensors")


def test_api_auth_protects_the_endpoints_like_the_webui_api(webui, hub, monkeypatch):
    from modules import script_callbacks, shared

    import lib_lcm.webui.downloads as downloads

    monkeypatch.setattr(downloads, "_service", None)
    monkeypatch.setattr(shared.cmd_opts, "api_auth", "me:secret", raising=False)
    app = FastAPI()
    script_callbacks.app_started_callback(None, app)
    client = TestClient(app)
    assert client.get("/lcm-lora/v1/status").status_code == 401
    assert client.get("/lcm-lora/v1/status", auth=("me", "wrong")).status_code == 401
    assert client.get("/lcm-lora/v1/status", auth=("me", "secret")).status_code == 200


def test_the_accordion_offers_a_download_only_when_asked_and_only_on_click(wired, webui):
    from modules import shared

    from lib_lcm.webui import status_html
    from lib_lcm.webui.downloads import service
    from lib_lcm.webui.script import download_for_loaded_checkpoint

    def button():
        blocks = webui.runner().demo.blocks.values()
        return next(b for b in blocks if getattr(b, "elem_id", "") == "script_txt2img_lcmlora_download")

    assert button().visible is False  # off by default
    assert service().jobs.snapshot() == {}  # building the UI never downloads
    assert "lcm-lora-open-tab" in status_html()  # missing: the status links to the tab
    shared.opts.lcm_lora_offer_download = True
    assert button().visible is True
    assert "lcm-lora-open-tab" not in status_html()  # the button replaces the link
    html = download_for_loaded_checkpoint()
    assert "Downloading lcm-lora-sdv1-5.safetensors in the background" in html
    assert service().jobs.wait("sd15", 30).state == "done"
    assert "Uses lcm-lora-sdv1-5.safetensors" in status_html()
    assert button().visible is False  # the file is there: nothing to offer
