"""The one answer to "may pst-bench contact the Hugging Face hub?".

Every loader (models, tokenizers, datasets) asks ``hub_offline()``: when it is
true, only local folders, bundled packages and the local caches are used.
"""

from __future__ import annotations

import os

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    """True when any of the Hugging Face offline variables is set to a true value."""
    return any(os.environ.get(var, "").strip().lower() in _TRUE for var in OFFLINE_VARIABLES)
