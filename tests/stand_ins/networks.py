"""Imitates what the WebUI's builtin Lora extension (``extensions-builtin/Lora/networks.py``, loaded
as the top-level module ``networks``) offers the extension: the name -> file registries and
``list_available_networks()``, which rescans the Lora folders. Here a rescan only counts itself."""
available_networks = {}
available_network_aliases = {}
rescans = 0


def list_available_networks():
    global rescans
    rescans += 1
