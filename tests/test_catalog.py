import re

from lib_lcm.rules import catalog
from lib_lcm.rules.architecture import Architecture

# Samplers and schedule labels that exist in A1111 1.10.1 and Forge (modules/sd_samplers_lcm.py,
# modules/sd_samplers_kdiffusion.py, modules/sd_schedulers.py), plus the TCD sampler we register.
WEBUI_SAMPLERS = {"LCM", "Euler", "TCD"}
WEBUI_SCHEDULES = {"SGM Uniform"}
# Where each family was published (the hub repos' model cards).
PUBLISHED = {
    "LCM-LoRA": {Architecture.SD1, Architecture.SDXL, Architecture.SSD1B},
    "TCD-LoRA": {Architecture.SD1, Architecture.SDXL},
    "Hyper-SD": {Architecture.SD1, Architecture.SDXL},
    "SDXL-Lightning": {Architecture.SDXL},
    "DMD2": {Architecture.SDXL},
}


def test_one_lcm_lora_per_supported_architecture():
    for architecture in Architecture:
        entry = catalog.for_architecture(architecture)
        assert (entry is not None) == architecture.is_supported
        if entry:
            assert entry.architecture is architecture


def test_official_repos_and_distinct_local_names():
    entries = catalog.CATALOG
    lcm = [e for e in entries if e.family == "LCM-LoRA"]
    assert {e.repo_id for e in lcm} == {
        "latent-consistency/lcm-lora-sdv1-5", "latent-consistency/lcm-lora-sdxl", "latent-consistency/lcm-lora-ssd-1b"}
    assert {e.repo_file for e in lcm} == {"pytorch_lora_weights.safetensors"}
    assert all(e.repo_file.endswith(".safetensors") for e in entries)
    local = [catalog.normalise_name(n) for e in entries for n in (e.local_name, *e.known_names)
             if n != "pytorch_lora_weights"]  # the one shared alias, checked against each file's layout
    assert len(set(local)) == len(local)
    assert all(e.local_filename == f"{e.local_name}.safetensors" for e in entries)
    assert len({e.key for e in entries}) == len(entries)
    assert len({(e.family, e.architecture) for e in entries}) == len(entries)


def test_every_family_exists_exactly_where_it_was_published():
    assert set(catalog.FAMILIES) == set(PUBLISHED)
    for family, architectures in PUBLISHED.items():
        assert set(catalog.architectures_of(family)) == architectures
        for architecture in Architecture:
            assert (family in catalog.families_for(architecture)) == (architecture in architectures)


def test_preset_bounds_are_sane_and_guidance_free_recipes_start_at_cfg_1():
    for entry in catalog.CATALOG:
        assert entry.sampler in WEBUI_SAMPLERS and entry.scheduler in WEBUI_SCHEDULES, entry.key
        assert set(entry.accepted_samplers) <= WEBUI_SAMPLERS
        assert 1 <= entry.steps.minimum <= entry.steps.default <= entry.steps.maximum <= 8, entry.key
        assert 1.0 <= entry.cfg.minimum <= entry.cfg.default <= entry.cfg.maximum <= 2.5, entry.key
        assert entry.cfg.default == 1.0  # every recipe was published at guidance 0 (LCM-LoRA's paper: w=1)
        assert entry.weight == 1.0
        if entry.timesteps:
            assert list(entry.timesteps) == sorted(set(entry.timesteps), reverse=True)
            assert all(0 <= t < 1000 for t in entry.timesteps)
            assert entry.steps.minimum == entry.steps.maximum == len(entry.timesteps)


def test_published_recipes():
    dmd2 = catalog.for_architecture(Architecture.SDXL, "DMD2")
    assert (dmd2.sampler, dmd2.timesteps) == ("LCM", (999, 749, 499, 249))
    lightning = catalog.for_architecture(Architecture.SDXL, "SDXL-Lightning")
    assert (lightning.sampler, lightning.scheduler) == ("Euler", "SGM Uniform")  # Euler, trailing timesteps
    assert catalog.for_architecture(Architecture.SD1, "TCD-LoRA").sampler == "TCD"
    assert catalog.for_architecture(Architecture.SDXL, "Hyper-SD").repo_file == "Hyper-SDXL-4steps-lora.safetensors"


def test_names_are_usable_in_prompt_tags_and_file_systems():
    for entry in catalog.CATALOG:
        for name in (entry.local_name, *entry.known_names):
            assert re.fullmatch(r"[\w.\- ]+", name), name


def test_sampling_recipe_fits_the_webui_and_the_paper():
    for entry in (e for e in catalog.CATALOG if e.family == "LCM-LoRA"):
        assert entry.sampler in WEBUI_SAMPLERS and entry.scheduler in WEBUI_SCHEDULES
        assert (entry.steps.minimum, entry.steps.default, entry.steps.maximum) == (2, 4, 8)
        assert (entry.cfg.minimum, entry.cfg.default, entry.cfg.maximum) == (1.0, 1.0, 2.5)
        assert entry.weight == 1.0


def test_family_names_are_forgiving():
    assert catalog.family_named("tcd") == "TCD-LoRA" and catalog.family_named("LIGHTNING") == "SDXL-Lightning"
    assert catalog.family_named("turbo") is None


def test_lookup_by_key_is_forgiving():
    assert catalog.by_key("SD15").architecture is Architecture.SD1
    assert catalog.by_key("ssd_1b").architecture is Architecture.SSD1B
    assert catalog.by_key("sd2") is None


def test_all_names_cover_every_alias_normalised():
    names = catalog.all_names()
    assert "lcm_lora_sdv1_5" in names and "pytorch_lora_weights" in names and "lcm_lora_weights_sdxl" in names
    assert catalog.normalise_name(" LCM-LoRA SDXL ") == "lcm_lora_sdxl"
