"""Imitates the folder names of ``modules/paths.py`` / ``modules/paths_internal.py`` (A1111 1.10.1):
the WebUI's root, its data folder and the models folder under it. Here: a folder under the system
temp directory; tests point the Lora folders elsewhere."""
import os
import tempfile

script_path = os.path.join(tempfile.gettempdir(), "stand-in-webui")
data_path = script_path
models_path = os.path.join(data_path, "models")
