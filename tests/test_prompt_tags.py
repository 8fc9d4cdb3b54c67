import pytest

from lib_lcm.rules.prompt_tags import add_tag, find_lora_tags, find_named, format_tag, format_weight, remove_tags


def test_find_tags_with_weights():
    tags = find_lora_tags("a <lora:style:0.8> cat, <lyco:x:0.5:1> <lora:lcm-lora-sdv1-5> <lora:y:te=0.3> <lora:z:abc>")
    assert [(t.name, t.weight) for t in tags] == [
        ("style", 0.8), ("x", 0.5), ("lcm-lora-sdv1-5", None), ("y", 0.3), ("z", None)]


def test_only_the_webui_tag_types_count():
    # modules/extra_networks.py looks the type up case-sensitively; <LORA:…> is not a LoRA.
    assert find_lora_tags("<LORA:x:1> <hypernet:x:1> <embedding:x>") == []


def test_find_named_is_case_and_separator_insensitive():
    assert [t.name for t in find_named("<lora:LCM_LoRA_SDv1-5:0.7>", {"lcm_lora_sdv1_5"})] == ["LCM_LoRA_SDv1-5"]


@pytest.mark.parametrize(("weight", "text"), [(1.0, "1"), (0.75, "0.75"), (1.25, "1.25"), (0.0, "0"),
                                              (2.0, "2"), (0.33333, "0.3333"), (-0.0, "0")])
def test_format_weight(weight, text):
    assert format_weight(weight) == text


def test_format_tag_refuses_names_the_parser_cannot_read():
    assert format_tag("lcm-lora-sdxl", 1.0) == "<lora:lcm-lora-sdxl:1>"
    for bad in ("a:b", "a>b", "", "<x"):
        with pytest.raises(ValueError, match="cannot be written"):
            format_tag(bad, 1.0)


def test_add_and_remove_round_trip():
    tag = "<lora:lcm-lora-sdv1-5:1>"
    for prompt in ("a cat", "", "a cat ", "multi\nline"):
        added = add_tag(prompt, tag)
        assert tag in added
        assert remove_tags(added, {"lcm_lora_sdv1_5"}) == prompt
    assert add_tag("a cat", tag) == "a cat <lora:lcm-lora-sdv1-5:1>"


def test_remove_keeps_other_tags():
    prompt = "a <lora:style:0.8> cat <lora:lcm-lora-sdxl:1>"
    assert remove_tags(prompt, {"lcm_lora_sdxl"}) == "a <lora:style:0.8> cat"
