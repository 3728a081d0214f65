"""utils.rl.overoptimisation: Gao et al.'s functional forms fitted to the gold reward's gain."""
import numpy as np
import pytest

from utils.rl import overoptimisation as oo
from utils.search import best_of_n as bon


def test_fits_recover_their_forms():
    kl = np.array(bon.bon_kl([1, 2, 4, 8, 16, 32, 64]))
    a, b = oo.fit_bon(kl, oo.gold_gain_bon(kl, 0.5, 0.3))
    assert (a, b) == pytest.approx((0.5, 0.3), abs=1e-9)
    kl_rl = np.linspace(0, 9, 12)
    d = np.sqrt(kl_rl)
    a, b = oo.fit_rl(kl_rl, np.where(d > 0, d * (0.4 - 0.2 * np.log(np.where(d > 0, d, 1.0))), 0.0))
    assert (a, b) == pytest.approx((0.4, 0.2), abs=1e-9)
    with pytest.raises(ValueError):
        oo.fit_bon([0.0, -1.0], [0.0, 0.0])
    with pytest.raises(ValueError):
        oo.fit_bon([0.0], [0.0])
