import re

from lib_lcm import catalog
from lib_lcm.architecture import Architecture

# Samplers and schedule labels that exist in A1111 1.10.1 and Forge (modules/sd_samplers_lcm.py,
# modules/sd_schedulers.py).
WEBUI_SAMPLERS = {"LCM"}
WEBUI_SCHEDULES = {"SGM Uniform"}


def test_one_lcm_lora_per_supported_architecture():
    for architecture in Architecture:
        entry = catalog.for_architecture(architecture)
        assert (entry is not None) == architecture.is_supported
        if entry:
            assert entry.architecture is architecture


def test_official_repos_and_distinct_local_names():
    entries = catalog.CATALOG
    assert {e.repo_id for e in entries} == {
        "latent-consistency/lcm-lora-sdv1-5", "latent-consistency/lcm-lora-sdxl", "latent-consistency/lcm-lora-ssd-1b"}
    assert {e.repo_file for e in entries} == {"pytorch_lora_weights.safetensors"}
    local = [catalog.normalise_name(e.local_name) for e in entries]
    assert len(set(local)) == len(local)
    assert all(e.local_filename == f"{e.local_name}.safetensors" for e in entries)


def test_names_are_usable_in_prompt_tags_and_file_systems():
    for entry in catalog.CATALOG:
        for name in (entry.local_name, *entry.known_names):
            assert re.fullmatch(r"[\w.\- ]+", name), name


def test_sampling_recipe_fits_the_webui_and_the_paper():
    for entry in catalog.CATALOG:
        assert entry.sampler in WEBUI_SAMPLERS and entry.scheduler in WEBUI_SCHEDULES
        assert (entry.steps.minimum, entry.steps.default, entry.steps.maximum) == (2, 4, 8)
        assert (entry.cfg.minimum, entry.cfg.default, entry.cfg.maximum) == (1.0, 1.0, 2.5)
        assert entry.weight == 1.0


def test_lookup_by_key_is_forgiving():
    assert catalog.by_key("SD15").architecture is Architecture.SD1
    assert catalog.by_key("ssd_1b").architecture is Architecture.SSD1B
    assert catalog.by_key("sd2") is None


def test_all_names_cover_every_alias_normalised():
    names = catalog.all_names()
    assert "lcm_lora_sdv1_5" in names and "pytorch_lora_weights" in names and "lcm_lora_weights_sdxl" in names
    assert catalog.normalise_name(" LCM-LoRA SDXL ") == "lcm_lora_sdxl"
