"""sd-webui-lcm-lora: the WebUI entry. Thin on purpose: every hook is one line into lib_lcm."""

from typing import Any

from modules import scripts

import lib_lcm.webui as lcm

# From this file's body, so that Reload UI (which clears callbacks and re-runs scripts/) re-registers.
lcm.register()


class LcmLoraScript(scripts.Script):
    # Subclass through the module: importing the Script class itself into this file would make
    # the WebUI register the abstract base as a script too (modules/scripts.py load_scripts).
    section = "accordions"  # beside Hires. fix and Refiner
    sorting_priority = 20  # Forge only: order inside the section
    create_group = False  # no gr.Group around the accordion: open, it takes the row as Hires. fix does (style.css)

    def __init__(self) -> None:
        super().__init__()
        lcm.attach(self)  # before the UI is built: on_after_component is applied at script init

    def title(self) -> str:
        return lcm.TITLE

    def show(self, is_img2img: bool) -> Any:
        return scripts.AlwaysVisible

    def ui(self, is_img2img: bool) -> list[Any]:
        return lcm.build_ui(self, is_img2img)

    def process(self, p: Any, *args: Any) -> None:
        lcm.process(self, p, *args)

    def process_before_every_sampling(self, p: Any, *args: Any, **kwargs: Any) -> None:
        lcm.before_sampling(p)
