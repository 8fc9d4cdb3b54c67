"""What the txt2img/img2img accordion does, without the WebUI: its script arguments, the preset table
the page script reads, and the per-generation decision (apply a plan, or skip with a reason)."""
