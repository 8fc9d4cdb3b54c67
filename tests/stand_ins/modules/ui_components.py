"""Imitates two components of ``modules/ui_components.py`` (A1111 1.10.1), built on gradio 3.41.

- ``ToolButton``: a ``gr.Button`` that may sit inside a form row (its expected parent is gradio's
  Form), with the CSS class "tool" put before any classes given; it renders as a button.
- ``InputAccordion(value, **kwargs)``: a ``gr.Checkbox`` whose value is the bool the script gets,
  rendered hidden with elem_id "<id>-checkbox", next to a ``gr.Accordion`` with elem_id "<id>"
  (class "input-accordion", open when value is true, label defaulting to "Accordion") that holds
  the components created inside ``with``. Without an elem_id, "<id>" is "input-accordion-<n>".
  (Forge builds it differently, but also hands the script a checkbox value.)
"""
import itertools

import gradio as gr


class FormComponent:
    def get_expected_parent(self):
        return gr.components.Form


class ToolButton(FormComponent, gr.Button):
    def __init__(self, *args, elem_classes=None, **kwargs):
        super().__init__(*args, elem_classes=["tool", *(elem_classes or [])], **kwargs)

    def get_block_name(self):
        return "button"


class InputAccordion(gr.Checkbox):
    _unnamed = itertools.count()

    def __init__(self, value, **kwargs):
        self.accordion_id = kwargs.get("elem_id") or f"input-accordion-{next(InputAccordion._unnamed)}"
        super().__init__(value, **{**kwargs, "elem_id": self.accordion_id + "-checkbox", "visible": False})
        self.accordion = gr.Accordion(**{**kwargs, "label": kwargs.get("label", "Accordion"), "open": value,
                                         "elem_id": self.accordion_id, "elem_classes": ["input-accordion"]})

    def __enter__(self):
        self.accordion.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self.accordion.__exit__(*exc_info)

    def get_block_name(self):
        return "checkbox"
