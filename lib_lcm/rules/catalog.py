"""The acceleration LoRAs this extension knows, as data: one entry per (family, architecture).

A family is what the accordion calls a preset (LCM-LoRA, TCD-LoRA, Hyper-SD, SDXL-Lightning, DMD2).
Each entry carries its published recipe translated to WebUI terms: the sampler and "Schedule type"
labels, the step and CFG ranges ("guidance 0" in diffusers is CFG 1 in the WebUI: one conditional
pass), the LoRA weight, and explicit timesteps where the authors trained on fixed ones. Nothing else
hard-codes a repository or a file name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lib_lcm.rules.architecture import Architecture, TensorInfo, detect_architecture

LCM_LORA = "LCM-LoRA"
TCD_LORA = "TCD-LoRA"
HYPER_SD = "Hyper-SD"
SDXL_LIGHTNING = "SDXL-Lightning"
DMD2 = "DMD2"
FAMILIES = (LCM_LORA, TCD_LORA, HYPER_SD, SDXL_LIGHTNING, DMD2)  # the accordion's preset order

# WebUI sampler names: "LCM" is the WebUI's own since A1111 1.8 (our exact twin replaces it while the
# accordion is on); "TCD" is ours.
LCM_SAMPLER = "LCM"
TCD_SAMPLER = "TCD"

MB = 1_000_000  # sizes are shown in decimal megabytes, as the hub shows them

# The TCD authors' gamma (diffusers' ``eta`` of TCDScheduler) in their published example: the default of
# the TCD sampler, the lcm_lora_tcd_gamma setting and ``generate --tcd-gamma``.
TCD_GAMMA = 0.3
# theta = theta_pre + lambda1 * tau_style + lambda2 * tau_LCM: the LCM-LoRA paper's weights.
STYLE_WEIGHT = 0.8  # lambda 1, a style LoRA beside the acceleration LoRA
ACCELERATION_WEIGHT = 1.0  # lambda 2


@dataclass(frozen=True)
class StepRange:
    minimum: int
    maximum: int
    default: int


@dataclass(frozen=True)
class CfgRange:
    minimum: float
    maximum: float
    default: float


@dataclass(frozen=True)
class AccelerationLora:
    key: str  # short id for the command line and settings: "sd15", "sdxl", "ssd-1b"
    family: str
    architecture: Architecture
    repo_id: str
    repo_file: str
    local_name: str  # file stem in the WebUI's Lora folder, hence the <lora:NAME:…> tag name
    sampler: str  # WebUI sampler name
    scheduler: str  # WebUI "Schedule type" label
    steps: StepRange
    cfg: CfgRange
    weight: float = ACCELERATION_WEIGHT
    # Stems under which people commonly keep the same official file; any match is still checked
    # against the architecture in its header before it is used.
    known_names: tuple[str, ...] = ()
    size_bytes: int | None = None  # published size, when known to the byte
    approx_size: str = ""  # the size as the hub page shows it, when not known to the byte
    # Samplers the user may pick instead of ``sampler`` and keep (the plan switches any other).
    accepted_samplers: tuple[str, ...] = ()
    timesteps: tuple[int, ...] = ()  # explicit timesteps the LoRA was trained on (DMD2)

    @property
    def local_filename(self) -> str:
        return f"{self.local_name}.safetensors"

    @property
    def samplers_kept(self) -> tuple[str, ...]:
        return (self.sampler, *self.accepted_samplers)

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}"

    def content_problem(self, tensors: Mapping[str, TensorInfo]) -> str | None:
        """Why a downloaded file is not this LoRA, or None when it is a LoRA of this architecture."""
        detection = detect_architecture(tensors)
        if detection.kind == "lora" and detection.architecture is self.architecture:
            return None
        return f"it is a {detection.architecture.label} {detection.kind} file, not a {self.architecture.label} LoRA"


# The LCM-LoRA paper's sweet spot is 4 steps at guidance 1 (no CFG); 2–8 steps work, and CFG
# above ~2 burns images. "SGM Uniform" is the WebUI schedule that evaluates the LCM authors'
# timesteps (999, 759, 499, 259 for 4 steps); the default "Automatic" wastes the last step at t=19.
LCM_STEPS = StepRange(minimum=2, maximum=8, default=4)
LCM_CFG = CfgRange(minimum=1.0, maximum=2.5, default=1.0)
# The live page trades quality for speed: 1 step already shows the composition, 2 is its default
# (the diffusers real-time how-to), more than 4 is no longer live.
LIVE_STEPS = StepRange(minimum=1, maximum=4, default=2)
_OFFICIAL_FILE = "pytorch_lora_weights.safetensors"
# Recipes published at guidance 0: CFG 1 in the WebUI, a little more still works.
_GUIDANCE_FREE_CFG = CfgRange(minimum=1.0, maximum=2.0, default=1.0)
_NEAR_GUIDANCE_FREE_CFG = CfgRange(minimum=1.0, maximum=1.5, default=1.0)
# Files distilled for 4 steps: fewer break them, a few more only refine.
_FOUR_STEP = StepRange(minimum=4, maximum=8, default=4)

CATALOG: tuple[AccelerationLora, ...] = (
    AccelerationLora(
        key="sd15", family=LCM_LORA, architecture=Architecture.SD1,
        repo_id="latent-consistency/lcm-lora-sdv1-5", repo_file=_OFFICIAL_FILE,
        local_name="lcm-lora-sdv1-5", sampler=LCM_SAMPLER, scheduler="SGM Uniform",
        steps=LCM_STEPS, cfg=LCM_CFG, accepted_samplers=(TCD_SAMPLER,),
        known_names=("lcm-lora-sd15", "LCM_LoRA_Weights_SD15", "lcm-lora-sdv1-5_lora_weights",
                     "pytorch_lora_weights"),
        size_bytes=134_621_556,
    ),
    AccelerationLora(
        key="sdxl", family=LCM_LORA, architecture=Architecture.SDXL,
        repo_id="latent-consistency/lcm-lora-sdxl", repo_file=_OFFICIAL_FILE,
        local_name="lcm-lora-sdxl", sampler=LCM_SAMPLER, scheduler="SGM Uniform",
        steps=LCM_STEPS, cfg=LCM_CFG, accepted_samplers=(TCD_SAMPLER,),
        known_names=("sdxl_lcm_lora", "LCM_LoRA_Weights_SDXL", "lcm-lora-sdxl_lora_weights", "pytorch_lora_weights"),
        size_bytes=393_854_592,
    ),
    AccelerationLora(
        key="ssd-1b", family=LCM_LORA, architecture=Architecture.SSD1B,
        repo_id="latent-consistency/lcm-lora-ssd-1b", repo_file=_OFFICIAL_FILE,
        local_name="lcm-lora-ssd-1b", sampler=LCM_SAMPLER, scheduler="SGM Uniform",
        steps=LCM_STEPS, cfg=LCM_CFG, accepted_samplers=(TCD_SAMPLER,),
        known_names=("LCM_LoRA_Weights_SSD1B", "lcm-lora-ssd1b", "pytorch_lora_weights"),
        size_bytes=None, approx_size="210 MB",  # published only as "210.0 MB"
    ),
    # TCD (Zheng et al. 2024): the authors' example runs TCDScheduler at 4 steps, guidance 0, eta
    # (their gamma) TCD_GAMMA. Steps are free; 2-8 is the range the paper evaluates.
    AccelerationLora(
        key="tcd-sd15", family=TCD_LORA, architecture=Architecture.SD1,
        repo_id="h1t/TCD-SD15-LoRA", repo_file=_OFFICIAL_FILE, local_name="TCD-SD15-LoRA",
        sampler=TCD_SAMPLER, scheduler="SGM Uniform", steps=LCM_STEPS, cfg=_GUIDANCE_FREE_CFG,
        accepted_samplers=(LCM_SAMPLER,), known_names=("tcd-sd15", "tcd_lora_sd15"),
    ),
    AccelerationLora(
        key="tcd-sdxl", family=TCD_LORA, architecture=Architecture.SDXL,
        repo_id="h1t/TCD-SDXL-LoRA", repo_file=_OFFICIAL_FILE, local_name="TCD-SDXL-LoRA",
        sampler=TCD_SAMPLER, scheduler="SGM Uniform", steps=LCM_STEPS, cfg=_GUIDANCE_FREE_CFG,
        accepted_samplers=(LCM_SAMPLER,), known_names=("tcd-sdxl", "tcd_lora_sdxl"),
    ),
    # Hyper-SD (Ren et al. 2024): the N-step LoRAs run DDIM with "trailing" timesteps at guidance 0,
    # fused at weight 1. Deterministic DDIM is Euler in k-diffusion's sigma space, and "SGM Uniform"
    # gives the trailing timesteps (999, 749, 499, 249 for 4 steps). The 4-step file: the sweet spot.
    AccelerationLora(
        key="hyper-sd15", family=HYPER_SD, architecture=Architecture.SD1,
        repo_id="ByteDance/Hyper-SD", repo_file="Hyper-SD15-4steps-lora.safetensors",
        local_name="Hyper-SD15-4steps-lora", sampler="Euler", scheduler="SGM Uniform",
        steps=_FOUR_STEP, cfg=_NEAR_GUIDANCE_FREE_CFG, approx_size="269 MB",
    ),
    AccelerationLora(
        key="hyper-sdxl", family=HYPER_SD, architecture=Architecture.SDXL,
        repo_id="ByteDance/Hyper-SD", repo_file="Hyper-SDXL-4steps-lora.safetensors",
        local_name="Hyper-SDXL-4steps-lora", sampler="Euler", scheduler="SGM Uniform",
        steps=_FOUR_STEP, cfg=_NEAR_GUIDANCE_FREE_CFG, approx_size="787 MB",
    ),
    # SDXL-Lightning (Lin et al. 2024): "Euler with trailing timesteps", guidance 0, SDXL only.
    AccelerationLora(
        key="lightning-sdxl", family=SDXL_LIGHTNING, architecture=Architecture.SDXL,
        repo_id="ByteDance/SDXL-Lightning", repo_file="sdxl_lightning_4step_lora.safetensors",
        local_name="sdxl_lightning_4step_lora", sampler="Euler", scheduler="SGM Uniform",
        steps=_FOUR_STEP, cfg=_NEAR_GUIDANCE_FREE_CFG, approx_size="394 MB",
    ),
    # DMD2 (Yin et al. 2024): LCMScheduler on the training timesteps 999, 749, 499, 249 at guidance
    # 0; the step count is therefore fixed at 4.
    AccelerationLora(
        key="dmd2-sdxl", family=DMD2, architecture=Architecture.SDXL,
        repo_id="tianweiy/DMD2", repo_file="dmd2_sdxl_4step_lora_fp16.safetensors",
        local_name="dmd2_sdxl_4step_lora_fp16", sampler=LCM_SAMPLER, scheduler="SGM Uniform",
        steps=StepRange(minimum=4, maximum=4, default=4), cfg=CfgRange(minimum=1.0, maximum=1.0, default=1.0),
        timesteps=(999, 749, 499, 249), known_names=("dmd2_sdxl_4step_lora",),
    ),
)


def normalise_name(name: str) -> str:
    """Compare LoRA names the way people mistype them: case, '-', '_' and spaces don't matter."""
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def for_architecture(architecture: Architecture, family: str = LCM_LORA) -> AccelerationLora | None:
    return next((e for e in CATALOG if e.architecture is architecture and e.family == family), None)


def family_named(name: str) -> str | None:
    """The family a user typed ("tcd", "hyper-sd", "Lightning", "dmd2"), or None."""
    wanted = normalise_name(name)
    for family in FAMILIES:
        short = normalise_name(family).removesuffix("_lora").removeprefix("sdxl_")
        if wanted in (normalise_name(family), short):
            return family
    return None


def families_for(architecture: Architecture) -> tuple[str, ...]:
    return tuple(f for f in FAMILIES if for_architecture(architecture, f) is not None)


def architectures_of(family: str) -> tuple[Architecture, ...]:
    return tuple(e.architecture for e in CATALOG if e.family == family)


def by_key(key: str) -> AccelerationLora | None:
    wanted = normalise_name(key)
    return next((e for e in CATALOG if normalise_name(e.key) == wanted), None)


def all_keys() -> tuple[str, ...]:
    """Every entry's key, in catalog order: what the command line, the settings and the HTTP API accept."""
    return tuple(entry.key for entry in CATALOG)


def all_names() -> frozenset[str]:
    """Every normalised name that denotes an acceleration LoRA, for spotting user-typed tags."""
    return _names_of(CATALOG)


def names_for(architecture: Architecture) -> frozenset[str]:
    """The normalised names of every acceleration LoRA made for ``architecture``."""
    return _names_of(e for e in CATALOG if e.architecture is architecture)


def _names_of(entries: Iterable[AccelerationLora]) -> frozenset[str]:
    return frozenset(normalise_name(n) for e in entries for n in (e.local_name, *e.known_names))


def _made_for(family: str) -> str:
    return " and ".join(a.label for a in architectures_of(family)) or "no architecture"


def preset_made_for(family: str) -> str:
    """The few words the accordion's status line shows for a preset chosen on another architecture."""
    return f"{family} is for {_made_for(family)} only."


def preset_unavailable_reason(family: str, architecture: Architecture) -> str:
    """Why a preset does not apply to the loaded checkpoint, and what to choose instead."""
    others = ", ".join(families_for(architecture))
    return (f"{family} exists only for {_made_for(family)}, not for {architecture.label}; "
            f"choose another preset ({others}).")
