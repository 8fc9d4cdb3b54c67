import os

from helpers import write_layout

from lib_lcm.lora_files.finding import candidate_names, find_acceleration_lora
from lib_lcm.rules import catalog
from lib_lcm.rules.architecture import Architecture
from lib_lcm.rules.settings import Settings

SD15 = catalog.for_architecture(Architecture.SD1)
SDXL = catalog.for_architecture(Architecture.SDXL)
SSD = catalog.for_architecture(Architecture.SSD1B)
DEFAULT = Settings()


def test_each_official_file_is_found_under_its_catalog_name(lora_dir, official_loras):
    for entry in (SD15, SDXL, SSD):
        lookup = find_acceleration_lora(entry, [lora_dir], DEFAULT)
        assert lookup.path == official_loras[entry.key]
        assert lookup.name == entry.local_name
        assert "Uses" in lookup.describe()


def test_found_in_sub_folders_but_not_hidden_ones(lora_dir):
    write_layout(lora_dir / ".cache" / "lcm-lora-sdv1-5.safetensors", "lcm-lora-sdv1-5")
    assert find_acceleration_lora(SD15, [lora_dir], DEFAULT).path is None
    path = write_layout(lora_dir / "speed" / "lcm-lora-sdv1-5.safetensors", "lcm-lora-sdv1-5")
    assert find_acceleration_lora(SD15, [lora_dir], DEFAULT).path == path


def test_a_file_with_the_right_name_but_the_wrong_architecture_is_refused(lora_dir):
    write_layout(lora_dir / "lcm-lora-sdv1-5.safetensors", "lcm-lora-sdxl")
    lookup = find_acceleration_lora(SD15, [lora_dir], DEFAULT)
    assert lookup.path is None
    assert lookup.rejected == ("lcm-lora-sdv1-5.safetensors is for SDXL, not SD 1.5.",)
    assert "latent-consistency/lcm-lora-sdv1-5" in lookup.describe()
    assert "is for SDXL" in lookup.describe()


def test_known_names_are_accepted_after_checking_the_header(lora_dir):
    write_layout(lora_dir / "pytorch_lora_weights.safetensors", "lcm-lora-sdxl")
    assert find_acceleration_lora(SD15, [lora_dir], DEFAULT).path is None
    assert find_acceleration_lora(SDXL, [lora_dir], DEFAULT).name == "pytorch_lora_weights"
    strict = Settings(accept_known_names=False)
    assert find_acceleration_lora(SDXL, [lora_dir], strict).path is None


def test_the_catalog_name_is_preferred_over_known_names(lora_dir):
    write_layout(lora_dir / "aaa" / "LCM_LoRA_Weights_SD15.safetensors", "lcm-lora-sdv1-5")
    path = write_layout(lora_dir / "zzz" / "lcm-lora-sdv1-5.safetensors", "lcm-lora-sdv1-5")
    assert find_acceleration_lora(SD15, [lora_dir], DEFAULT).path == path


def test_name_match_ignores_case_and_separators(lora_dir):
    path = write_layout(lora_dir / "LCM_LoRA_SDv1_5.safetensors", "lcm-lora-sdv1-5")
    assert find_acceleration_lora(SD15, [lora_dir], DEFAULT).path == path


def test_a_file_chosen_in_settings_is_the_only_candidate(lora_dir, official_loras):
    mine = write_layout(lora_dir / "my-speedup.safetensors", "lcm-lora-sdv1-5")
    chosen = Settings(file_names=((Architecture.SD1, "my-speedup.safetensors"),))
    assert candidate_names(SD15, chosen) == ["my-speedup"]
    assert find_acceleration_lora(SD15, [lora_dir], chosen).path == mine
    missing = Settings(file_names=((Architecture.SD1, "nope"),))
    assert find_acceleration_lora(SD15, [lora_dir], missing).path is None


def test_corrupt_and_non_lora_files_are_refused_with_reasons(lora_dir):
    (lora_dir / "lcm-lora-sdv1-5.safetensors").write_bytes(b"\0" * 16)
    write_layout(lora_dir / "sub" / "LCM_LoRA_Weights_SD15.safetensors", "checkpoint-sd15")
    lookup = find_acceleration_lora(SD15, [lora_dir], DEFAULT)
    assert lookup.path is None
    assert "header length" in lookup.rejected[0]
    assert lookup.rejected[1] == "LCM_LoRA_Weights_SD15.safetensors is not a LoRA file."


def test_names_the_prompt_parser_cannot_carry_are_refused(lora_dir):
    if os.name == "nt":
        return
    write_layout(lora_dir / "pytorch_lora_weights:v2.safetensors", "lcm-lora-sdv1-5")
    chosen = Settings(file_names=((Architecture.SD1, "pytorch_lora_weights:v2"),))
    lookup = find_acceleration_lora(SD15, [lora_dir], chosen)
    assert lookup.path is None and "cannot be named in a prompt tag" in lookup.rejected[0]


def test_several_folders_and_absent_ones(tmp_path, lora_dir):
    other = tmp_path / "LyCORIS"
    path = write_layout(other / "lcm-lora-ssd-1b.safetensors", "lcm-lora-ssd-1b")
    lookup = find_acceleration_lora(SSD, [tmp_path / "absent", lora_dir, other], DEFAULT)
    assert lookup.path == path


def test_only_safetensors_files_count(lora_dir):
    (lora_dir / "lcm-lora-sdv1-5.ckpt").write_bytes(b"PK")
    (lora_dir / "lcm-lora-sdv1-5.safetensors.part").write_bytes(b"partial")
    assert find_acceleration_lora(SD15, [lora_dir], DEFAULT).path is None
