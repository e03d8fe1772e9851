"""Data loading: GLUE splits from a local glue_data folder or the Hugging Face hub."""

from pst_bench.data.glue import load_glue_splits

__all__ = ["load_glue_splits"]
