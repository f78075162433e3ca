import pytest
import torch

from ablation_core.evaluation.kid import kid, mmd2_unbiased


def test_kid_near_zero_for_same_distribution():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=generator)
    y = torch.randn(200, 8, generator=generator)

    value, _ = kid(x, y)

    # The unbiased estimate scatters around 0 by about 0.03 at 200 samples of 8 features;
    # a shift of 0.5 per feature gives about 1.2.
    assert abs(value) < 0.1


def test_kid_grows_with_shift():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(100, 8, generator=generator)
    near = torch.randn(100, 8, generator=generator) + 0.5
    far = torch.randn(100, 8, generator=generator) + 2.0

    assert kid(x, near)[0] > 0.3
    assert kid(x, far)[0] > kid(x, near)[0]


def test_mmd_is_symmetric():
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(30, 4, generator=generator).double()
    y = torch.randn(40, 4, generator=generator).double() + 1

    assert mmd2_unbiased(x, y) == pytest.approx(mmd2_unbiased(y, x))


def test_kid_subsets_for_unequal_sets():
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(50, 4, generator=generator)
    y = torch.randn(20, 4, generator=generator) + 3

    mean, std = kid(x, y, num_subsets=10)

    assert mean > 0
    assert std >= 0


def test_kid_rejects_single_sample():
    with pytest.raises(ValueError, match="at least 2"):
        mmd2_unbiased(torch.zeros(1, 3), torch.zeros(5, 3))
