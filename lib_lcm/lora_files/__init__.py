"""``.safetensors`` files on disk: reading headers, finding the acceleration LoRA in the Lora
folders, what state a catalog file is in, and the checksums of files the downloader verified."""
