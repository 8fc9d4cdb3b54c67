"""The acceleration LoRAs this extension knows, as data.

Adding TCD-LoRA, Hyper-SD, SDXL-Lightning or DMD2 later means adding entries here (with their
own family, sampler, schedule and ranges); nothing else hard-codes a repository or a file name.
"""

from __future__ import annotations

from dataclasses import dataclass

from lib_lcm.architecture import Architecture

LCM_LORA = "LCM-LoRA"


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
    weight: float = 1.0
    # Stems under which people commonly keep the same official file; any match is still checked
    # against the architecture in its header before it is used.
    known_names: tuple[str, ...] = ()
    size_bytes: int | None = None  # published size, when known to the byte

    @property
    def local_filename(self) -> str:
        return f"{self.local_name}.safetensors"

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}"


# The LCM-LoRA paper's sweet spot is 4 steps at guidance 1 (no CFG); 2–8 steps work, and CFG
# above ~2 burns images. "SGM Uniform" is the WebUI schedule that evaluates the LCM authors'
# timesteps (999, 759, 499, 259 for 4 steps); the default "Automatic" wastes the last step at t=19.
_LCM_STEPS = StepRange(minimum=2, maximum=8, default=4)
_LCM_CFG = CfgRange(minimum=1.0, maximum=2.5, default=1.0)
_OFFICIAL_FILE = "pytorch_lora_weights.safetensors"

CATALOG: tuple[AccelerationLora, ...] = (
    AccelerationLora(
        key="sd15", family=LCM_LORA, architecture=Architecture.SD1,
        repo_id="latent-consistency/lcm-lora-sdv1-5", repo_file=_OFFICIAL_FILE,
        local_name="lcm-lora-sdv1-5", sampler="LCM", scheduler="SGM Uniform",
        steps=_LCM_STEPS, cfg=_LCM_CFG,
        known_names=("lcm-lora-sd15", "lcm_lora_sd15", "LCM_LoRA_Weights_SD15", "lcm-lora-sdv1-5_lora_weights",
                     "pytorch_lora_weights"),
        size_bytes=134_621_556,
    ),
    AccelerationLora(
        key="sdxl", family=LCM_LORA, architecture=Architecture.SDXL,
        repo_id="latent-consistency/lcm-lora-sdxl", repo_file=_OFFICIAL_FILE,
        local_name="lcm-lora-sdxl", sampler="LCM", scheduler="SGM Uniform",
        steps=_LCM_STEPS, cfg=_LCM_CFG,
        known_names=("sdxl_lcm_lora", "LCM_LoRA_Weights_SDXL", "lcm-lora-sdxl_lora_weights", "pytorch_lora_weights"),
        size_bytes=393_854_592,
    ),
    AccelerationLora(
        key="ssd-1b", family=LCM_LORA, architecture=Architecture.SSD1B,
        repo_id="latent-consistency/lcm-lora-ssd-1b", repo_file=_OFFICIAL_FILE,
        local_name="lcm-lora-ssd-1b", sampler="LCM", scheduler="SGM Uniform",
        steps=_LCM_STEPS, cfg=_LCM_CFG,
        known_names=("LCM_LoRA_Weights_SSD1B", "lcm-lora-ssd1b", "pytorch_lora_weights"),
        size_bytes=None,  # published only as "210.0 MB"
    ),
)


def normalise_name(name: str) -> str:
    """Compare LoRA names the way people mistype them: case, '-', '_' and spaces don't matter."""
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def for_architecture(architecture: Architecture, family: str = LCM_LORA) -> AccelerationLora | None:
    return next((e for e in CATALOG if e.architecture is architecture and e.family == family), None)


def by_key(key: str) -> AccelerationLora | None:
    wanted = normalise_name(key)
    return next((e for e in CATALOG if normalise_name(e.key) == wanted), None)


def all_names() -> frozenset[str]:
    """Every normalised name that denotes an acceleration LoRA, for spotting user-typed tags."""
    return frozenset(normalise_name(n) for e in CATALOG for n in (e.local_name, *e.known_names))
