"""Fine-tune: dense training, no mask (the paper's "Fine-tune" rows)."""

from .registry import Method, register_method

register_method(Method(name="finetune", label="Fine-tune"))
