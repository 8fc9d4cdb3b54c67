from lib_lcm.rules.architecture import Architecture
from lib_lcm.rules.choice import Bounds, Choice
from lib_lcm.rules.settings import SECTION, SETTINGS, Settings, read_settings


def lookup_from(values):
    return lambda key, default: values.get(key, default)


def test_keys_are_prefixed_and_unique():
    keys = [s.key for s in SETTINGS]
    assert len(set(keys)) == len(keys)
    assert all(k.startswith("lcm_lora_") for k in keys)
    assert SECTION == ("lcm_lora", "LCM-LoRA")


def test_numbers_always_have_a_slider():
    # modules/ui_settings.py: a float default without a component breaks the Settings tab.
    for spec in SETTINGS:
        if isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool):
            assert spec.minimum is not None and spec.maximum is not None and spec.step, spec.key
            assert spec.minimum <= spec.default <= spec.maximum


def test_defaults():
    settings = read_settings(lookup_from({}))
    assert settings == Settings(Choice(False, 1.0, 4, 1.0), Bounds(2, 8, 1.0, 2.5), True, True, ())


def test_values_of_the_wrong_type_fall_back():
    settings = read_settings(lookup_from({"lcm_lora_max_steps": "lots", "lcm_lora_set_sampler": "yes",
                                          "lcm_lora_default_cfg": float("nan"), "lcm_lora_file_sd1": 5}))
    assert settings.bounds.max_steps == 8 and settings.set_sampler is True
    assert settings.defaults.cfg == 1.0 and settings.file_names == ()


def test_user_bounds_and_file_names():
    settings = read_settings(lookup_from({"lcm_lora_min_steps": 10, "lcm_lora_max_steps": 3,
                                          "lcm_lora_file_sdxl": " my-lcm-xl.safetensors "}))
    assert settings.bounds.min_steps == 3 and settings.bounds.max_steps == 10
    assert settings.file_name_for(Architecture.SDXL) == "my-lcm-xl.safetensors"
    assert settings.file_name_for(Architecture.SD1) == ""


def test_sampling_settings_are_read_and_bounded():
    values = {"lcm_lora_tcd_gamma": 7.0, "lcm_lora_timesteps": " 999,749 ", "lcm_lora_skip_uncond": False,
              "lcm_lora_exact_schedule": "yes"}
    read = read_settings(lambda key, default: values.get(key, default))
    assert (read.tcd_gamma, read.timesteps, read.skip_uncond, read.exact_schedule) == (1.0, "999,749", False, True)
