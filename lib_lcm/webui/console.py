"""The extension's lines in the WebUI's console, all with one prefix."""


def say(message: str) -> None:
    print(f"[LCM-LoRA] {message}")
