"""What a trained run leaves behind besides its record, and the readers of those formats.

- ``artifacts``: the masks and score sample next to the record (``<id>.masks.npz``, ``<id>.scores.npz``);
  ``load_masks`` reads them back (the figures and the mask report use it);
- ``export``: the merged model (``save_pretrained``) and the exports ``cfg`` asks for;
- ``compressed``: bitmask + kept values (``<id>.compressed/``) in one of ``VALUE_DTYPES``;
- ``slim`` and ``slim_modeling``: the smaller dense model with removed FFN neurons and heads physically gone;
- ``semi_structured``: 2:4 masks as semi-structured sparse tensors on a GPU.

Importing the package itself is light (torch and numpy): the config check reads ``VALUE_DTYPES``, the
reports ``load_masks``, and neither needs the exporters' transformers imports.
"""

from __future__ import annotations

import torch

from .artifacts import load_masks

#: The value dtypes of the compressed format (``export_compressed=...``); float32 is lossless.
VALUE_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}

__all__ = ["VALUE_DTYPES", "load_masks"]
