"""install.py against a stand-in of the `launch` module (modules/launch_utils.py: run_pip, args)."""
import importlib.util
import subprocess
import sys
from types import SimpleNamespace

from helpers import ROOT


def load_install():
    spec = importlib.util.spec_from_file_location("lcm_install", ROOT / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeLaunch:
    def __init__(self, skip_install=False):
        self.args = SimpleNamespace(skip_install=skip_install)
        self.calls = []

    def run_pip(self, command, desc):
        self.calls.append(command)


def test_nothing_to_do_when_the_webui_ships_everything():
    install = load_install()
    assert install.plan({"safetensors": "0.4.2", "huggingface_hub": "0.26.2"}) == ([], [])


def test_missing_packages_get_a_quoted_bounded_requirement():
    install = load_install()
    commands, warnings = install.plan({"safetensors": None, "huggingface_hub": None})
    assert commands == ['install "safetensors>=0.3,<1"', 'install "huggingface_hub>=0.14.1,<1.0"']
    assert warnings == []


def test_a_too_new_hub_is_only_reported_never_changed():
    install = load_install()
    commands, warnings = install.plan({"safetensors": "0.4.2", "huggingface_hub": "1.3.0"})
    assert commands == [] and "Left unchanged" in warnings[0]


def test_main_runs_pip_only_for_missing_and_honours_skip_install(monkeypatch):
    install = load_install()
    monkeypatch.setattr(install, "installed_version", lambda name: None if name == "huggingface_hub" else "0.4.2")
    launch = FakeLaunch()
    install.main(launch)
    assert launch.calls == ['install "huggingface_hub>=0.14.1,<1.0"']
    skipping = FakeLaunch(skip_install=True)
    install.main(skipping)
    assert skipping.calls == []


def test_in_this_environment_it_would_install_nothing():
    install = load_install()
    commands, _ = install.plan({name: install.installed_version(name) for name in install.REQUIREMENTS})
    assert commands == []


def test_running_outside_the_webui_is_harmless():
    result = subprocess.run([sys.executable, str(ROOT / "install.py")], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0 and "meant to be run by the WebUI" in result.stderr
