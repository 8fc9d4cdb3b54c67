"""What the extension reads and writes of the WebUI's objects, as Protocols: the contract, typed.

The WebUI is not installed where the type checker runs, and its objects differ between A1111 and
Forge; these list only the members the adapter relies on. Members that some WebUIs or passes lack
are read with ``getattr`` and a default, and are not listed (``scheduler`` arrived in A1111 1.9,
``hr_cfg`` is Forge's, ``is_hr_pass`` exists during the hires pass, ``init_images`` on img2img only).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


class Processing(Protocol):
    """A generation: ``StableDiffusionProcessing`` (``modules/processing.py``) as scripts see it in ``process``."""

    all_prompts: list[str]
    main_prompt: str
    steps: int
    cfg_scale: float
    sampler_name: str | None
    extra_generation_params: dict[str, Any]
    sd_model: Any


@runtime_checkable
class HiresProcessing(Processing, Protocol):
    """txt2img's processing object (``StableDiffusionProcessingTxt2Img``), which carries the hires pass."""

    enable_hr: bool
    all_hr_prompts: list[str]
    hr_second_pass_steps: int
    hr_sampler_name: str | None
    hr_scheduler: str | None


@runtime_checkable
class ScheduledProcessing(Protocol):
    """A processing object with a "Schedule type" (A1111 1.9 and later, Forge)."""

    scheduler: str


@runtime_checkable
class HiresCfgProcessing(Protocol):
    """Forge's txt2img, whose hires pass has a CFG scale of its own."""

    hr_cfg: float


class Script(Protocol):
    """Our ``scripts.Script`` instance (``modules/scripts.py``), as the adapter uses it."""

    is_img2img: bool
    infotext_fields: list[tuple[Any, Any]]
    paste_field_names: list[str]

    def elem_id(self, item_id: str) -> str: ...
