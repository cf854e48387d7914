"""Old public names that keep working: renamed arguments and renamed classes, each with a
``DeprecationWarning`` that names the new one."""

from __future__ import annotations

import functools
import inspect
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: An old argument's new name, or its new name and a function turning the old value into the new one.
Rename = str | tuple[str, Callable[[Any], Any]]

_GIVEN_AS = "_deprecated_argument_names"


def renamed_arguments(**renames: Rename) -> Callable[[F], F]:
    """Decorate a method (an ``__init__``) so each old keyword argument still works.

    ``@renamed_arguments(wait_for_ready="wait_for_completion")``: an old name is passed on under its new
    name (converted when a function is given) with a ``DeprecationWarning``; giving both names raises
    :class:`~airflow_batch_provider.exceptions.InvalidInputError`. The old names stay in the signature
    (listed in the wrapper's ``deprecated_arguments``) so Airflow's ``partial()`` accepts them.
    :func:`argument_name` tells which name the user wrote, so errors can name it.
    """
    table = {old: (new, None) if isinstance(new, str) else new for old, new in renames.items()}

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            owner = type(self).__name__
            for old, (new, convert) in table.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    from airflow_batch_provider.exceptions import InvalidInputError

                    raise InvalidInputError(
                        f"{owner} got both {new}= and {old}=, its deprecated old name; pass only {new}=."
                    )
                warnings.warn(
                    f"{owner}: {old}= is deprecated; use {new}= instead.", DeprecationWarning, stacklevel=3
                )
                value = kwargs.pop(old)
                kwargs[new] = convert(value) if convert else value
                given = dict(getattr(self, _GIVEN_AS, None) or {})
                given[new] = old
                object.__setattr__(self, _GIVEN_AS, given)
            return func(self, *args, **kwargs)

        # The old names stay in the signature, so Airflow's partial()/expand() checks accept them too.
        signature = inspect.signature(func)
        parameters = list(signature.parameters.values())
        at = next((i for i, p in enumerate(parameters) if p.kind is p.VAR_KEYWORD), len(parameters))
        old = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in table]
        wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*parameters[:at], *old, *parameters[at:]]
        )
        wrapper.deprecated_arguments = dict(table)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def argument_name(obj: Any, name: str) -> str:
    """The name the user wrote for argument ``name`` of ``obj``: its deprecated old name if they used it."""
    return str((getattr(obj, _GIVEN_AS, None) or {}).get(name, name))


def renamed_classes(module: str, renames: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that still serves each old class name, with a ``DeprecationWarning``.

    ``__getattr__ = renamed_classes(__name__, {"OldOperator": "NewOperator"})`` at the end of a module.
    """

    def __getattr__(name: str) -> Any:
        new = renames.get(name)
        if new is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(f"{module}.{name} is deprecated; use {new} instead.", DeprecationWarning, stacklevel=2)
        return getattr(sys.modules[module], new)

    return __getattr__


__all__ = ["Rename", "argument_name", "renamed_arguments", "renamed_classes"]
