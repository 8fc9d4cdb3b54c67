"""The command line, ``python -m lib_lcm …``: parsing, and one module per group of commands."""
