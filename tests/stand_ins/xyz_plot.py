"""Imitates what extensions use of the WebUI's X/Y/Z plot script (A1111 1.10.1 ``scripts/xyz_grid.py``).

The WebUI loads that file as a script named "xyz_grid.py"; extensions reach its module through
``modules.scripts.scripts_data`` and append to its ``axis_options``. What is reproduced:
- ``AxisOption(label, type, apply, format_value=…, confirm=None, cost=0.0, choices=None, prepare=None)``
  keeps its arguments as attributes of the same names; ``choices`` is a callable giving the dropdown.
- A run along one axis (``run_axis``): the typed values are converted with ``option.type``, the
  option's ``confirm(p, values)`` may refuse them all before anything is generated (its exception is
  the message), then each cell generates on a shallow copy of ``p`` (``copy(p)``, so dicts such as
  ``extra_generation_params`` are shared) after ``option.apply(cell, value, values)``.
- ``install()`` puts this module in ``scripts_data`` under the plot's script name.
"""
import copy

from modules import processing, scripts


class AxisOption:
    def __init__(self, label, type, apply, format_value=None, confirm=None, cost=0.0, choices=None, prepare=None):
        self.label, self.type, self.apply, self.format_value = label, type, apply, format_value
        self.confirm, self.cost, self.choices, self.prepare = confirm, cost, choices, prepare


def _set(field):
    def apply(p, value, values):
        setattr(p, field, value)

    return apply


axis_options = [AxisOption("Nothing", str, lambda p, value, values: None), AxisOption("Seed", int, _set("seed"))]


class PlotScript:
    """Stands for the plot's Script class: the loader names its module after the file."""


PlotScript.__module__ = "xyz_grid.py"


def install():
    import sys

    scripts.scripts_data.append(scripts.ScriptClassData(PlotScript, "scripts/xyz_grid.py", ".", sys.modules[__name__]))


def option(label):
    return next(o for o in axis_options if o.label == label)


def run_axis(p, label, typed_values):
    chosen = option(label)
    values = [chosen.type(value) for value in typed_values]
    if chosen.confirm:
        chosen.confirm(p, values)
    cells = []
    for value in values:
        cell = copy.copy(p)
        chosen.apply(cell, value, values)
        cells.append((cell, processing.process_images(cell)))
    return cells
