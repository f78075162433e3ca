"""Model-based concept ablation for text-to-image diffusion models (Kumari et al., arXiv 2303.13516)."""

__version__ = "0.1.0"
