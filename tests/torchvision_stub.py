"""A stand-in for torchvision so that timm imports here: PyPI's torchvision is a CUDA build that fails to import
on this CPU-only machine, and timm's model code (what the tests use) needs none of it; only its import lines run."""

import importlib.abc
import importlib.machinery
import sys
import types


class _AnyAttribute(type):
    """Placeholder classes answer any class attribute (``InterpolationMode.NEAREST``) with its name."""

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return f"{cls.__name__}.{name}"


class _Anything(types.ModuleType):
    """A module whose every attribute is a placeholder class (for ``from torchvision.x import Y``)."""

    __path__: list = []

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = _AnyAttribute(name, (), {"__init__": lambda self, *a, **k: None})
        setattr(self, name, value)
        return value


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _Anything(spec.name)
        module.__version__ = "0.0.0+stub"
        return module

    def exec_module(self, module):
        pass


def install() -> None:
    """Make ``import torchvision`` succeed with placeholders, unless a working torchvision is importable."""
    if "torchvision" in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())
