from lib_lcm.combinations import adetailer
from lib_lcm.rules.choice import Bounds

TAB = {"ad_model": "face_yolov8n.pt", "ad_use_steps": True, "ad_steps": 28, "ad_use_cfg_scale": True,
       "ad_cfg_scale": 7.0, "ad_use_sampler": True, "ad_sampler": "Euler a", "ad_scheduler": "Karras"}


def test_in_range_values_and_kept_samplers_are_untouched():
    tab = {**TAB, "ad_steps": 6, "ad_cfg_scale": 1.5, "ad_sampler": "LCM"}
    fitted = adetailer.fit_tabs([True, False, tab], Bounds(), ("LCM",), "LCM")
    assert fitted.changes == () and fitted.tabs[2] == tab


def test_each_tab_is_named_as_adetailer_names_it_and_only_active_tabs_change():
    second = {**TAB, "ad_steps": 1, "ad_use_cfg_scale": False, "ad_use_sampler": False}
    fitted = adetailer.fit_tabs([True, False, TAB, {"ad_model": "None", "ad_steps": 50, "ad_use_steps": True},
                                 second], Bounds(), ("LCM",), "LCM")
    assert fitted.changes == ("ADetailer steps 28 to 8", "ADetailer CFG 7 to 2.5",
                              "ADetailer sampler Euler a to LCM", "ADetailer 3rd steps 1 to 2")
    assert fitted.tabs[2]["ad_scheduler"] == adetailer.SAME_SCHEDULER
    assert fitted.tabs[3]["ad_steps"] == 50


def test_unreadable_numbers_are_left_for_adetailer_to_reject():
    tab = {**TAB, "ad_steps": "many", "ad_cfg_scale": None, "ad_use_sampler": False}
    assert adetailer.fit_tabs([tab], Bounds(), ("LCM",), "LCM").changes == ()


def test_enabled_follows_adetailers_rule():
    assert adetailer.is_enabled([True, False, TAB])
    assert adetailer.is_enabled([{"ad_model": "mediapipe_face_full"}])  # first argument not a bool: on
    assert not adetailer.is_enabled([False, False, TAB])
    assert not adetailer.is_enabled([True, False, {"ad_model": "None"}])


def test_our_script_runs_in_its_pass_only_when_listed_or_unfiltered():
    assert adetailer.runs_our_script("dynamic_prompting, lcm_lora", True)
    assert not adetailer.runs_our_script("dynamic_prompting,dynamic_thresholding", True)
    assert not adetailer.runs_our_script(None, True)
    assert adetailer.runs_our_script("", False)


def test_skip_img2img_gives_tabs_without_separate_values_the_plans_steps_and_sampler():
    fitted = adetailer.fit_tabs([True, True, {"ad_model": "mediapipe_face_full"}], Bounds(), ("LCM",), "LCM", steps=4)
    assert fitted.tabs[2] == {"ad_model": "mediapipe_face_full", "ad_use_steps": True, "ad_steps": 4,
                              "ad_use_sampler": True, "ad_sampler": "LCM", "ad_scheduler": adetailer.SAME_SCHEDULER}
    assert fitted.changes == ()
    assert adetailer.skips_img2img([True, True], has_init_images=True)
    assert not adetailer.skips_img2img([True, True], has_init_images=False)
    assert not adetailer.skips_img2img([True, False], has_init_images=True)
