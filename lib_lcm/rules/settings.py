"""The extension's settings, as data: keys, defaults, widgets, and reading them back safely.

Every key starts with ``lcm_lora_`` (settings share one namespace in the WebUI's config.json).
The adapter turns SETTINGS into ``OptionInfo`` objects; everything else reads a ``Settings``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lib_lcm.rules import infotext
from lib_lcm.rules.architecture import Architecture
from lib_lcm.rules.catalog import (
    ACCELERATION_WEIGHT,
    CATALOG,
    DMD2,
    LCM_CFG,
    LCM_STEPS,
    STYLE_WEIGHT,
    TCD_GAMMA,
)
from lib_lcm.rules.choice import WEIGHT_RANGE, Bounds, Choice

SECTION = ("lcm_lora", "LCM-LoRA")


@dataclass(frozen=True)
class SettingSpec:
    key: str
    default: bool | int | float | str
    label: str
    minimum: float | None = None  # set for sliders
    maximum: float | None = None
    step: float | None = None
    info: str = ""
    infotext: str = ""  # pasting an infotext with this key puts the setting into "Override settings"


def _dmd2_timesteps() -> str:
    entry = next(e for e in CATALOG if e.family == DMD2)
    return ",".join(map(str, entry.timesteps))


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("lcm_lora_default_weight", ACCELERATION_WEIGHT, "Default LoRA weight", *WEIGHT_RANGE, 0.05,
                f"The paper applies the acceleration LoRA at {ACCELERATION_WEIGHT:g} and style LoRAs at about "
                f"{STYLE_WEIGHT:g}."),
    SettingSpec("lcm_lora_default_steps", LCM_STEPS.default, "Default steps (0: use the Sampling steps slider)",
                0, 50, 1, f"{LCM_STEPS.default} is the sweet spot; {LCM_STEPS.minimum} is fastest, "
                f"{LCM_STEPS.maximum} is the most detailed."),
    SettingSpec("lcm_lora_default_cfg", LCM_CFG.default, "Default CFG (0: use the CFG Scale slider)", 0.0, 30.0,
                0.1, "At 1.0 the negative prompt has no effect; above ~2 images burn."),
    SettingSpec("lcm_lora_min_steps", LCM_STEPS.minimum, "Fewest steps allowed", 1, 50, 1),
    SettingSpec("lcm_lora_max_steps", LCM_STEPS.maximum, "Most steps allowed", 1, 50, 1),
    SettingSpec("lcm_lora_min_cfg", LCM_CFG.minimum, "Lowest CFG allowed", 1.0, 30.0, 0.1),
    SettingSpec("lcm_lora_max_cfg", LCM_CFG.maximum, "Highest CFG allowed", 1.0, 30.0, 0.1),
    SettingSpec("lcm_lora_set_sampler", True, "Switch to the LCM sampler with the SGM Uniform schedule",
                info="Off: keep the sampler chosen in the UI (only useful for experiments)."),
    SettingSpec("lcm_lora_exact_schedule", True, "Run LCM and TCD on the reference (diffusers) timesteps",
                info="Whatever the Schedule type says; img2img then runs every step on the strength-shortened "
                     "schedule as diffusers does. Off: the WebUI's own LCM with the Schedule type dropdown."),
    SettingSpec("lcm_lora_skip_uncond", True, "At CFG 1, skip the unconditional UNet pass",
                info="The same image for half the UNet work. Forge always does this itself."),
    SettingSpec("lcm_lora_tcd_gamma", TCD_GAMMA, "TCD gamma", 0.0, 1.0, 0.05,
                "Stochasticity of the TCD sampler: 0 is deterministic, 1 re-noises fully like LCM; "
                f"{TCD_GAMMA:g} is the TCD authors' default.", infotext=infotext.KEY_TCD_GAMMA),
    SettingSpec("lcm_lora_timesteps", "", "Explicit timesteps for LCM and TCD (empty: from the step count)",
                info=f"Descending, comma-separated; DMD2 needs {_dmd2_timesteps()}. img2img keeps the last ones.",
                infotext=infotext.KEY_EXPLICIT),
    SettingSpec("lcm_lora_accept_known_names", True,
                "Also use the official files under other common names (checked by their tensor layout)",
                info="For example LCM_LoRA_Weights_SD15 or a renamed pytorch_lora_weights."),
    SettingSpec("lcm_lora_offer_download", False, "Show a download button in the accordion",
                info="It downloads the official file for the loaded checkpoint when you click it; never by itself."),
    SettingSpec("lcm_lora_file_sd1", "", "LoRA file to use for SD 1.5 (empty: automatic)"),
    SettingSpec("lcm_lora_file_sdxl", "", "LoRA file to use for SDXL (empty: automatic)"),
    SettingSpec("lcm_lora_file_ssd1b", "", "LoRA file to use for SSD-1B (empty: automatic)"),
)

_FILE_KEYS = {Architecture.SD1: "lcm_lora_file_sd1", Architecture.SDXL: "lcm_lora_file_sdxl",
              Architecture.SSD1B: "lcm_lora_file_ssd1b"}
_DEFAULTS = {spec.key: spec.default for spec in SETTINGS}


@dataclass(frozen=True)
class Settings:
    defaults: Choice = field(default_factory=Choice)
    bounds: Bounds = field(default_factory=Bounds)
    set_sampler: bool = True
    accept_known_names: bool = True
    file_names: tuple[tuple[Architecture, str], ...] = ()
    offer_download: bool = False
    exact_schedule: bool = True
    skip_uncond: bool = True
    tcd_gamma: float = TCD_GAMMA
    timesteps: str = ""  # parsed where used: lib_lcm.sampling.schedule.parse_timesteps

    def file_name_for(self, architecture: Architecture) -> str:
        return dict(self.file_names).get(architecture, "")


def read_settings(lookup: Callable[[str, Any], Any]) -> Settings:
    """Build Settings from ``lookup(key, default)``; a value of the wrong type falls back to its default."""
    def number(key: str) -> float:
        value = lookup(key, _DEFAULTS[key])
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return float(value) if ok else float(_DEFAULTS[key])

    def flag(key: str) -> bool:
        value = lookup(key, _DEFAULTS[key])
        return value if isinstance(value, bool) else bool(_DEFAULTS[key])

    def text(key: str) -> str:
        value = lookup(key, _DEFAULTS[key])
        return value.strip() if isinstance(value, str) else ""

    bounds = Bounds(int(number("lcm_lora_min_steps")), int(number("lcm_lora_max_steps")),
                    number("lcm_lora_min_cfg"), number("lcm_lora_max_cfg")).normalised()
    defaults = Choice(enabled=False, weight=number("lcm_lora_default_weight"),
                      steps=int(number("lcm_lora_default_steps")), cfg=number("lcm_lora_default_cfg"))
    return Settings(
        defaults=defaults, bounds=bounds, set_sampler=flag("lcm_lora_set_sampler"),
        accept_known_names=flag("lcm_lora_accept_known_names"), offer_download=flag("lcm_lora_offer_download"),
        file_names=tuple((arch, text(key)) for arch, key in _FILE_KEYS.items() if text(key)),
        exact_schedule=flag("lcm_lora_exact_schedule"), skip_uncond=flag("lcm_lora_skip_uncond"),
        tcd_gamma=min(max(number("lcm_lora_tcd_gamma"), 0.0), 1.0), timesteps=text("lcm_lora_timesteps"),
    )
