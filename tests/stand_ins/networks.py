"""Mirrors extensions-builtin/Lora/networks.py as the WebUI leaves it in sys.modules: the name->file
registry and list_available_networks(), which rescans the Lora folders (here: counts the calls)."""
available_networks = {}
available_network_aliases = {}
rescans = 0


def list_available_networks():
    global rescans
    rescans += 1
