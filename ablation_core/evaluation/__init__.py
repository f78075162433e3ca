"""Evaluation of concept ablation with the metrics of Kumari et al., arXiv 2303.13516, Section 4."""

from ablation_core.evaluation.runner import evaluate_model_version

__all__ = ["evaluate_model_version"]
