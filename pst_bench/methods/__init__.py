"""The methods pst-bench runs, one registry entry each (``registry``), and the keys they share (``settings``).

Add a method: one module in this package that calls ``register_method(Method(...))`` and one YAML file
``conf/method/<name>.yaml`` with ``kind: <name>`` (docs, "Add a method").
"""

from .registry import (
    Method,
    find_method,
    get_method,
    method_names,
    on_register,
    register_method,
    registered_methods,
    sparse_method_names,
    unregister_method,
)
from .settings import STRUCTURE_DEFAULTS, MethodSettings, MethodView, structure_of

__all__ = [
    "STRUCTURE_DEFAULTS",
    "Method",
    "MethodSettings",
    "MethodView",
    "find_method",
    "get_method",
    "method_names",
    "on_register",
    "register_method",
    "registered_methods",
    "sparse_method_names",
    "structure_of",
    "unregister_method",
]
