"""Kernel Inception Distance on any feature space (Bińkowski et al., arXiv 1801.01401).

KID is the squared maximum mean discrepancy between two feature sets under the polynomial
kernel k(x, y) = (x . y / d + 1) ** 3, estimated without bias. It is averaged over random
subsets, as in the reference implementation, so small and large sets give comparable values.
"""

import torch


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor, degree: int = 3, coef: float = 1.0) -> torch.Tensor:
    dim = x.shape[1]
    return (x @ y.T / dim + coef) ** degree


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Return the unbiased estimate of MMD^2 between samples x (m, d) and y (n, d)."""
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {m} and {n}")
    k_xx = polynomial_kernel(x, x)
    k_yy = polynomial_kernel(y, y)
    k_xy = polynomial_kernel(x, y)
    # The unbiased estimator leaves out the diagonal terms k(x_i, x_i).
    term_xx = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    term_yy = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return float(term_xx + term_yy - 2 * k_xy.mean())


def kid(
    x: torch.Tensor, y: torch.Tensor, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Return the mean and standard deviation of KID over random subsets of both sets."""
    x, y = x.double(), y.double()
    size = min(len(x), len(y), subset_size)
    if size == min(len(x), len(y)) and len(x) == len(y) == size:
        # Subsets of the whole set would all be the same set.
        return mmd2_unbiased(x, y), 0.0

    generator = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(num_subsets):
        pick_x = torch.randperm(len(x), generator=generator)[:size]
        pick_y = torch.randperm(len(y), generator=generator)[:size]
        values.append(mmd2_unbiased(x[pick_x], y[pick_y]))
    result = torch.tensor(values)
    return float(result.mean()), float(result.std()) if len(values) > 1 else 0.0
