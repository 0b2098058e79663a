"""The reference document's formulas, the basis terms, and the catalogue of tool conventions.

Pure Python over the framework-neutral layer IR (`conventions.ir`); nothing here imports a framework.
"""
from .formulas import TOTAL, Counts, layer_counts, model_counts
from .ir import Layer, Model

__all__ = ["TOTAL", "Counts", "Layer", "Model", "layer_counts", "model_counts"]
