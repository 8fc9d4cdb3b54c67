"""Imitates ``modules/options.py`` (A1111 1.10.1): ``OptionInfo``, ``options_section`` and how
``Options`` stores and looks up settings.

- ``OptionInfo(default, label, component, component_args, ..., infotext, ..., category_id)``
  describes one setting; ``.info(text)`` appends a hint to ``comment_after`` and returns the same
  object.
- ``options_section((id, title), infos)`` files every info under that section;
  ``(id, title, category)`` also sets ``category_id``. The dict is returned.
- ``Options``: values live in ``data``, descriptions in ``data_labels``. ``__getattr__`` is only
  consulted when ordinary lookup fails: then a stored value, else a registered default, else
  AttributeError (so code must use ``getattr(opts, key, default)`` for settings that may not be
  registered yet). Assigning a registered key stores it in ``data``; any other name becomes a plain
  attribute. ``add_option`` registers a description and stores its default unless a value exists.
"""


class OptionInfo:
    def __init__(self, default=None, label="", component=None, component_args=None, onchange=None, section=None,
                 refresh=None, comment_before="", comment_after="", infotext=None, restrict_api=False,
                 category_id=None):
        self.default, self.label, self.infotext = default, label, infotext
        self.component, self.component_args = component, component_args
        self.onchange, self.refresh, self.restrict_api = onchange, refresh, restrict_api
        self.section, self.category_id = section, category_id
        self.comment_before, self.comment_after = comment_before, comment_after
        self.do_not_save = False

    def info(self, info):
        self.comment_after += "<span class='info'>(" + info + ")</span>"
        return self


def options_section(section, infos):
    for info in infos.values():
        info.section = tuple(section[:2])
        if len(section) > 2:
            info.category_id = section[2]
    return infos


class Options:
    def __init__(self, data_labels):
        object.__setattr__(self, "data_labels", dict(data_labels))
        object.__setattr__(self, "data", {key: info.default for key, info in data_labels.items()
                                          if not info.do_not_save})

    def __getattr__(self, item):
        stored, described = self.__dict__.get("data", {}), self.__dict__.get("data_labels", {})
        if item in stored:
            return stored[item]
        if item in described:
            return described[item].default
        raise AttributeError(f"no setting named {item!r}")

    def __setattr__(self, name, value):
        if name in self.data_labels or name in self.data:
            self.data[name] = value
        else:
            object.__setattr__(self, name, value)

    def add_option(self, key, info):
        self.data_labels[key] = info
        if not info.do_not_save:
            self.data.setdefault(key, info.default)
