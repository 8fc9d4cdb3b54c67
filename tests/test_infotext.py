from lib_lcm.rules import infotext


def test_strip_removes_only_the_tag_we_added():
    params = {"Prompt": "a cat <lora:lcm-lora-sdv1-5:1>", "Hires prompt": "hi <lora:lcm-lora-sdv1-5:1>",
              infotext.KEY_LORA: "lcm-lora-sdv1-5", infotext.KEY_TAG: infotext.TAG_ADDED}
    infotext.strip_added_tags(params)
    assert params["Prompt"] == "a cat" and params["Hires prompt"] == "hi"


def test_a_tag_the_user_typed_stays():
    params = {"Prompt": "a cat <lora:lcm-lora-sdv1-5:0.7>", infotext.KEY_LORA: "lcm-lora-sdv1-5",
              infotext.KEY_TAG: infotext.TAG_FROM_PROMPT}
    infotext.strip_added_tags(params)
    assert params["Prompt"] == "a cat <lora:lcm-lora-sdv1-5:0.7>"


def test_infotexts_from_elsewhere_are_untouched():
    params = {"Prompt": "a <lora:lcm-lora-sdv1-5:1>"}
    infotext.strip_added_tags(params)
    assert params == {"Prompt": "a <lora:lcm-lora-sdv1-5:1>"}
    assert not infotext.was_enabled(params)


def test_strip_removes_the_hires_checkpoints_own_lora_we_added():
    params = {"Prompt": "a cat <lora:lcm-lora-sdv1-5:1>", "Hires prompt": "a cat <lora:lcm-lora-sdxl:1>",
              infotext.KEY_LORA: "lcm-lora-sdv1-5", infotext.KEY_HIRES_LORA: "lcm-lora-sdxl",
              infotext.KEY_TAG: infotext.TAG_ADDED}
    infotext.strip_added_tags(params)
    assert params["Prompt"] == "a cat" and params["Hires prompt"] == "a cat"
