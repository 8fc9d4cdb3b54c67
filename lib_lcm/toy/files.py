"""Where the shipped toy weights live and what their files are called.

Torch-free, so that the command line can name them without importing torch.
"""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent / "weights"
TEACHER_FILE = "teacher.safetensors"
AUTOENCODER_FILE = "autoencoder.safetensors"
CLASSIFIER_FILE = "classifier.safetensors"
STUDENT_LORA_FILE = "lcm-lora-digits.safetensors"
