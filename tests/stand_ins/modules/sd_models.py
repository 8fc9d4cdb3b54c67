"""Mirrors modules/sd_models.py: CheckpointInfo, model_data (no load on access) and select_checkpoint."""
import os


class CheckpointInfo:
    def __init__(self, filename):
        self.filename = filename
        self.name = os.path.basename(filename)
        self.title = f"{self.name} [0000000000]"


class SdModelData:
    def __init__(self):
        self.sd_model = None


model_data = SdModelData()
checkpoints_list = {}


def select_checkpoint():
    """Raises FileNotFoundError if no checkpoints are found."""
    if not checkpoints_list:
        raise FileNotFoundError("No checkpoints found.")
    return next(iter(checkpoints_list.values()))


class FakeModel:
    """What set_model_type() leaves on a loaded model: the is_* flags and sd_checkpoint_info."""

    def __init__(self, filename, **flags):
        self.sd_checkpoint_info = CheckpointInfo(filename)
        for name in ("is_sd1", "is_sd2", "is_sdxl", "is_ssd", "is_sd3"):
            setattr(self, name, flags.get(name, False))
