"""MaP: magnitude pruning, S = |W|, dense training of W under the cubic schedule."""

from .registry import Method, register_method

register_method(Method(name="map", label="MaP", layer="pst_bench.sparsity.layers:MagnitudeSparseLinear"))
