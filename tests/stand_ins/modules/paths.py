"""Mirrors modules/paths.py / modules/paths_internal.py: the folders the WebUI computes at start."""
import os
import tempfile

script_path = os.path.join(tempfile.gettempdir(), "stand-in-webui")
data_path = script_path
models_path = os.path.join(data_path, "models")
