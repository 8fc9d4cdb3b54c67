"""Imitates what the extension reads from ``modules/sd_models.py`` (A1111 1.10.1): ``CheckpointInfo``
(filename, name, title, short_title), ``model_data.sd_model`` (the loaded model, read without
triggering a load), ``checkpoints_list``, ``select_checkpoint()`` (FileNotFoundError when there is
none) and ``get_closet_checkpoint_match(name)`` (a checkpoint by title or file name, else None).

``FakeModel`` is not in the WebUI: a loaded model as far as the extension can see it, the is_*
flags ``set_model_type()`` leaves on it and its ``sd_checkpoint_info``."""
import os


class CheckpointInfo:
    def __init__(self, filename):
        self.filename = filename
        self.name = os.path.basename(filename)
        self.title = f"{self.name} [0000000000]"
        self.short_title = f"{os.path.splitext(self.name)[0]} [0000000000]"


class SdModelData:
    def __init__(self):
        self.sd_model = None


model_data = SdModelData()
checkpoints_list = {}


def select_checkpoint():
    for info in checkpoints_list.values():
        return info
    raise FileNotFoundError("No checkpoints found.")


def get_closet_checkpoint_match(name):
    for info in checkpoints_list.values():
        if name in (info.title, info.name, info.short_title):
            return info
    return None


class FakeModel:
    def __init__(self, filename, **flags):
        self.sd_checkpoint_info = CheckpointInfo(filename)
        for flag in ("is_sd1", "is_sd2", "is_sdxl", "is_ssd", "is_sd3"):
            setattr(self, flag, flags.get(flag, False))
