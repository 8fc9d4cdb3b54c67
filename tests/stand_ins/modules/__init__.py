"""Test stand-in for the WebUI's ``modules`` package: small imitations, in this project's own code,
of the behaviour the extension relies on (see ../README.md)."""
