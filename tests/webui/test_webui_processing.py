"""The real Script class through the WebUI's hooks: txt2img, img2img, inpaint, hires, batches."""
import pytest
from modules import processing, sd_models, sd_samplers, shared
from webui_env import TITLE

from lib_lcm.rules import infotext

ON = [True, 1.0, 4, 1.0]
TAG = "<lora:lcm-lora-sdv1-5:1>"


@pytest.fixture
def sd15(webui):
    webui.add_lora()
    return webui


def test_txt2img_from_the_ui_runs_the_lcm_recipe(sd15):
    p, processed = sd15.txt2img(ON)
    # The built-in Sampler script set 20 steps / DPM++ 2M in setup(); process() ran later and won.
    [sample] = p.sampled
    assert (sample.sampler_name, sample.scheduler, sample.steps_run, sample.cfg_scale) == ("LCM", "SGM Uniform", 4, 1.0)
    assert sample.loras == [("lcm-lora-sdv1-5", ["1"])]
    text = processed.infotexts[0]
    assert text.startswith(f"a cat {TAG}\n")
    assert "Steps: 4, Sampler: LCM, Schedule type: SGM Uniform, CFG scale: 1.0" in text
    assert "LCM-LoRA: lcm-lora-sdv1-5, LCM-LoRA weight: 1, LCM-LoRA tag: added" in text


def test_batches_every_prompt_of_every_batch_and_the_grid_prompt(sd15):
    p, processed = sd15.txt2img(ON, prompt=["a", "b", "c", "d"], batch_size=2, n_iter=2)
    assert p.all_prompts == [f"{x} {TAG}" for x in "abcd"]
    assert p.main_prompt == f"a {TAG}"
    assert len(p.sampled) == 2 and all(s.loras == [("lcm-lora-sdv1-5", ["1"])] for s in p.sampled)
    assert [t.split("\n")[0] for t in processed.infotexts] == p.all_prompts


def test_hires_pass_gets_the_lora_clamped_steps_and_the_lcm_sampler(sd15):
    p, processed = sd15.txt2img(ON, enable_hr=True, hr_second_pass_steps=20, hr_sampler_name="Euler a",
                                hr_prompt="a cat, detailed", batch_size=2)
    _first, hires, *_ = p.sampled
    assert hires.loras == [("lcm-lora-sdv1-5", ["1"])]
    assert (hires.sampler_name, hires.scheduler, hires.steps_run) == ("LCM", "SGM Uniform", 8)
    assert p.all_hr_prompts == [f"a cat, detailed {TAG}"] * 2
    assert "LCM-LoRA clamped: hires steps 20 to 8" in processed.infotexts[0]
    assert f'Hires prompt: "a cat, detailed {TAG}"' in processed.infotexts[0]


def test_hires_with_same_prompt_and_sampler(sd15):
    p, processed = sd15.txt2img(ON, enable_hr=True)
    hires = p.sampled[1]
    assert (hires.sampler_name, hires.steps_run, hires.loras) == ("LCM", 4, [("lcm-lora-sdv1-5", ["1"])])
    assert "Hires prompt" not in processed.infotexts[0] and "Hires sampler" not in processed.infotexts[0]


def test_forge_hires_cfg_is_clamped(sd15):
    p, processed = sd15.run(processing.ForgeTxt2Img, ON, prompt="x", enable_hr=True, hr_cfg=7.0)
    assert p.sampled[1].cfg_scale == 2.5
    assert "hires CFG 7 to 2.5" in processed.infotexts[0]


def test_img2img_and_inpaint_with_the_webuis_own_schedule(sd15):
    shared.opts.lcm_lora_exact_schedule = False
    for mask in (None, "mask"):
        p, processed = sd15.img2img(ON, denoising_strength=0.5, mask=mask)
        [sample] = p.sampled
        assert (sample.sampler_name, sample.loras) == ("LCM", [("lcm-lora-sdv1-5", ["1"])])
        assert sample.steps_run == 3  # A1111: int(0.5 * 4) + 1
        assert "LCM-LoRA steps run: 3" in processed.infotexts[0]
        assert p.lcm_lora_exact is False


def test_img2img_with_the_exact_schedule_is_handed_to_our_sampler(sd15):
    """Every step runs (tests/webui/test_webui_sampling.py runs it); nothing is recorded at planning."""
    p, processed = sd15.img2img(ON, denoising_strength=0.5, mask="mask")
    assert p.lcm_lora_exact is True and "steps run" not in processed.infotexts[0]


def test_img2img_with_exact_steps_setting(sd15):
    shared.opts.img2img_fix_steps = True
    p, processed = sd15.img2img(ON, denoising_strength=0.5)
    assert p.sampled[0].steps_run == 4 and "steps run" not in processed.infotexts[0]


def test_disabled_leaves_everything_untouched(sd15):
    p, processed = sd15.txt2img([False, 1.0, 4, 1.0], enable_hr=True, negative_prompt="ugly")
    assert p.all_prompts == ["a cat"] and p.all_hr_prompts == ["a cat"]
    assert (p.steps, p.sampler_name, p.scheduler, p.cfg_scale) == (20, "DPM++ 2M", "Automatic", 7.0)
    assert not any(k.startswith("LCM-LoRA") for k in p.extra_generation_params)
    assert "LCM-LoRA" not in processed.infotexts[0]


def test_reused_p_loses_stale_keys_when_disabled_and_never_doubles_the_tag(sd15):
    runner = sd15.runner(is_img2img=True)
    p, _ = sd15.img2img(ON, runner=runner)
    ours = runner.by_title(TITLE)
    processing.process_images(p)  # img2img batch re-runs the same p (modules/img2img.py)
    assert p.all_prompts == [f"a cat {TAG}"]
    p.script_args[ours.args_from] = False
    processing.process_images(p)
    assert not any(k.startswith("LCM-LoRA") for k in p.extra_generation_params)


def test_a_tag_typed_by_the_user_is_kept(sd15):
    p, processed = sd15.txt2img(ON, prompt="a cat <lora:LCM_LoRA_Weights_SD15:0.5>")
    assert p.all_prompts == ["a cat <lora:LCM_LoRA_Weights_SD15:0.5>"]
    assert "LCM-LoRA tag: from prompt" in processed.infotexts[0]
    assert "LCM-LoRA weight: 0.5" in processed.infotexts[0]


def test_style_lora_with_acceleration_weight(sd15):
    p, _ = sd15.txt2img([True, 1.0, 4, 1.0], prompt="a cat <lora:style:0.8>")
    assert p.sampled[0].loras == [("style", ["0.8"]), ("lcm-lora-sdv1-5", ["1"])]


def test_missing_lora_file_skips_with_a_message_and_changes_nothing(webui):
    p, processed = webui.txt2img(ON)
    assert p.all_prompts == ["a cat"] and p.steps == 20 and p.sampler_name == "DPM++ 2M"
    skipped = p.extra_generation_params[infotext.KEY_SKIPPED]
    assert "latent-consistency/lcm-lora-sdv1-5" in skipped
    assert any("LCM-LoRA skipped" in c for c in processed.comments.splitlines())


def test_unsupported_model_is_skipped(webui):
    webui.add_lora()
    webui.load_model("checkpoint-sd2", is_sd2=True)
    p, processed = webui.txt2img(ON)
    assert p.all_prompts == ["a cat"] and "not for SD 2.x" in processed.infotexts[0]


@pytest.mark.parametrize(("layout", "flags", "forge", "expected"), [
    ("checkpoint-sdxl", {"is_sdxl": True}, False, "lcm-lora-sdxl"),
    ("checkpoint-sdxl", {"is_sdxl": True}, True, "lcm-lora-sdxl"),
    ("checkpoint-sd15", {}, True, "lcm-lora-sdv1-5"),  # Forge's flagless placeholder: the file decides
])
def test_the_lora_matches_the_loaded_architecture(webui, official_layouts, layout, flags, forge, expected):
    webui.load_model(layout, forge=forge, **flags)
    if not flags:
        from modules import shared as s

        for name in ("is_sd1", "is_sd2", "is_sdxl", "is_sd3"):
            delattr(s.sd_model, name)
    p, _ = webui.txt2img(ON)
    assert p.sampled[0].loras == [(expected, ["1"])]


def test_ssd1b_on_forge_is_told_apart_by_the_checkpoint_file(webui, official_layouts):
    import re

    from helpers import tensors_of, write_sparse_safetensors
    from modules import sd_models

    removed = re.compile(r"model\.diffusion_model\.(middle_block\.[12]\.|(input_blocks\.[78]|output_blocks\.[01])"
                         r"\.1\.transformer_blocks\.[4-9]\.|output_blocks\.[45]\.1\.transformer_blocks\.1\.)")
    path = write_sparse_safetensors(webui.tmp / "ssd-1b.safetensors",
                                    {k: v for k, v in tensors_of("checkpoint-sdxl").items() if not removed.match(k)})
    model = sd_models.FakeModel(str(path), is_sdxl=True)
    del model.is_ssd
    webui.monkeypatch.setattr(shared, "sd_model", model)
    p, _ = webui.txt2img(ON)
    assert p.sampled[0].loras == [("lcm-lora-ssd-1b", ["1"])]


def test_a_webui_without_an_lcm_sampler_keeps_its_sampler(sd15, monkeypatch):
    monkeypatch.delitem(sd_samplers.all_samplers_map, "LCM")
    p, _ = sd15.txt2img(ON)
    assert p.sampled[0].sampler_name == "DPM++ 2M" and p.sampled[0].loras == [("lcm-lora-sdv1-5", ["1"])]


def test_cfg_one_with_negative_prompt_is_explained(sd15):
    _, processed = sd15.txt2img(ON, negative_prompt="blurry")
    assert "negative prompt has no effect" in processed.comments


def test_zero_means_the_main_sliders_clamped(sd15):
    p, processed = sd15.txt2img([True, 1.0, 0, 0.0])
    assert (p.steps, p.cfg_scale) == (8, 2.5)
    assert "LCM-LoRA clamped: steps 20 to 8; CFG 7 to 2.5" in processed.infotexts[0]


def other_checkpoint(webui, layout):
    """A second checkpoint in the checkpoint list, as the hires and refiner dropdowns offer it."""
    from helpers import write_layout

    path = write_layout(webui.tmp / "models" / "Stable-diffusion" / f"other-{layout}.safetensors", layout)
    info = sd_models.CheckpointInfo(str(path))
    webui.monkeypatch.setitem(sd_models.checkpoints_list, info.title, info)
    return info


def test_a_hires_checkpoint_of_another_architecture_gets_its_own_lora(sd15):
    sd15.add_lora("lcm-lora-sdxl")
    hires = other_checkpoint(sd15, "checkpoint-sdxl")
    p, processed = sd15.txt2img(ON, enable_hr=True, hr_checkpoint_name=hires.name)
    first, second = p.sampled
    assert first.loras == [("lcm-lora-sdv1-5", ["1"])] and second.loras == [("lcm-lora-sdxl", ["1"])]
    assert 'Hires prompt: "a cat <lora:lcm-lora-sdxl:1>"' in processed.infotexts[0]
    assert "LCM-LoRA hires LoRA: lcm-lora-sdxl" in processed.infotexts[0]
    assert any("uses <lora:lcm-lora-sdxl:…> instead of <lora:lcm-lora-sdv1-5:…>" in c for c in p.comments)


def test_a_hires_checkpoint_of_the_same_architecture_keeps_the_lora(sd15):
    hires = other_checkpoint(sd15, "checkpoint-sd15")
    p, processed = sd15.txt2img(ON, enable_hr=True, hr_checkpoint_name=hires.title)
    assert [s.loras for s in p.sampled] == [[("lcm-lora-sdv1-5", ["1"])]] * 2
    assert "Hires prompt" not in processed.infotexts[0] and "hires LoRA" not in processed.infotexts[0]


def test_a_refiner_of_another_architecture_skips_with_the_reason(sd15):
    refiner = other_checkpoint(sd15, "checkpoint-sdxl")
    p, processed = sd15.txt2img(ON, refiner_checkpoint=refiner.title, refiner_switch_at=0.5)
    assert p.sampled[0].loras == [] and p.all_prompts == ["a cat"]
    assert f'LCM-LoRA skipped: "The refiner {refiner.short_title} is SDXL' in processed.infotexts[0]


def test_process_called_again_on_a_copy_of_the_processed_p_changes_nothing(sd15):
    """ADetailer (scripts/!adetailer.py postprocess_image) calls every script's process on copy(p) after sampling."""
    from copy import copy

    p, _ = sd15.txt2img(ON, negative_prompt="ugly")
    before = (dict(p.extra_generation_params), dict(p.comments), list(p.all_prompts), p.steps, p.sampler_name)
    again = copy(p)
    p.scripts.process(again)
    assert (dict(again.extra_generation_params), dict(again.comments), list(again.all_prompts), again.steps,
            again.sampler_name) == before
    assert again.extra_generation_params[infotext.KEY_TAG] == infotext.TAG_ADDED


def test_an_img2img_batch_plans_every_image_again(sd15):
    runner = sd15.runner(is_img2img=True)
    p, _ = sd15.img2img(ON, runner=runner, denoising_strength=0.5)
    p.prompt = "a dog"
    p.setup_prompts()
    p.scripts.process(p)
    assert p.all_prompts == [f"a dog {TAG}"]
