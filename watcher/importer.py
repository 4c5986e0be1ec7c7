"""`"module:Attr"` strings resolved on demand: how the registries (sources, alert destinations)
name their classes without importing every implementation up front."""

from __future__ import annotations

import importlib
from typing import Any


def import_attr(spec: str) -> Any:
    """The attribute `Attr` of module `module` for the spec "module:Attr"."""
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr)
