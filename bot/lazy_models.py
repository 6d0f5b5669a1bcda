"""aiogram's Bot API types built as pydantic models when first used, not all when imported.

Importing aiogram builds a validator for each of its ~440 Telegram types, every one with compiled
copies of the types it refers to: about 120 of the bot's 180 MB and 2 of its 3 seconds of
start-up (benchmarks/capacity.py), though the bot meets a few dozen of those types. aiogram's
import ends with one loop that rebuilds every type against a namespace of all of them; the hook
keeps that namespace instead of building, and lends it to pydantic when pydantic builds a type
on its first use (as it does by itself for any model left incomplete).

This leans on how aiogram and pydantic do things today, so tests/test_lazy_models.py builds
every type and method through the hook: an upgrade that changes either fails CI, not a miner's
update.
"""

from __future__ import annotations

import sys
from typing import Any


def build_aiogram_models_on_first_use() -> None:
    """Call before anything imports aiogram; afterwards it changes nothing."""
    if "aiogram" in sys.modules:
        return
    from pydantic import BaseModel

    rebuild = BaseModel.model_rebuild.__func__  # type: ignore[attr-defined]
    namespace: dict[str, Any] = {}
    importing = True

    def model_rebuild(cls: type[BaseModel], *args: Any, _types_namespace: Any = None, **kwargs: Any) -> bool | None:
        if cls.__module__.startswith("aiogram."):
            if importing and _types_namespace is not None:
                namespace.update(_types_namespace)  # aiogram.types' loop over every type: not now
                return None
            if _types_namespace is None and namespace:
                _types_namespace = namespace
        return rebuild(cls, *args, _types_namespace=_types_namespace, **kwargs)

    BaseModel.model_rebuild = classmethod(model_rebuild)  # type: ignore[method-assign, assignment]
    import aiogram  # noqa: F401  (types, methods and the loop above)

    importing = False
