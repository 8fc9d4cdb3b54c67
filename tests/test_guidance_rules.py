from lib_lcm.combinations.guidance import GuidanceFeatures, advise


def test_nothing_to_say_without_features():
    assert advise(GuidanceFeatures(), 1.0).notes == ()
    assert advise(GuidanceFeatures(), 2.0).notes == ()


def test_at_cfg_1_each_feature_is_named_and_only_dynamic_thresholding_is_turned_off():
    advice = advise(GuidanceFeatures(skip_early_cond=0.2, s_min_uncond=1.5), 1.0)
    assert advice.notes == ("Ignore negative prompt during early sampling (0.2) does nothing at CFG 1.",
                            "Negative Guidance minimum sigma (1.5) does nothing at CFG 1.")
    assert not advice.dynamic_thresholding_off
    assert advise(GuidanceFeatures(dynamic_thresholding=True), 1.0).dynamic_thresholding_off


def test_above_cfg_1_the_features_run_as_set():
    advice = advise(GuidanceFeatures(skip_early_cond=0.2, dynamic_thresholding=True), 1.5)
    assert not advice.dynamic_thresholding_off
    assert len(advice.notes) == 1 and "exact LCM timesteps" in advice.notes[0]


def test_extensions_that_need_the_unconditional_rows_keep_them_at_cfg_1_only():
    features = GuidanceFeatures(need_unconditional_rows=("AnimateDiff",))
    assert advise(features, 1.0).keep_unconditional == "kept for AnimateDiff"
    assert advise(features, 2.0).keep_unconditional == ""
