"""utils.rl.overoptimisation: the best-of-N KL, the exact best-of-N curve, Gao et al.'s fits, the paired bootstrap."""
import math
from itertools import combinations

import numpy as np
import pytest
import torch

from utils.rl import overoptimisation as oo


def test_bon_kl_values_and_errors():
    assert oo.bon_kl(1) == 0.0
    assert oo.bon_kl(4) == pytest.approx(math.log(4) - 0.75)
    assert oo.bon_kl([1, 2]) == pytest.approx([0.0, math.log(2) - 0.5])
    with pytest.raises(ValueError, match="N >= 1"):
        oo.bon_kl(0)


def test_bon_kl_matches_the_exact_kl_of_a_fine_discrete_policy():
    K = 20000
    ref = torch.full((K,), 1.0 / K, dtype=torch.float64)
    F = ref.cumsum(0)
    for N in [2, 8, 32]:
        bon = F**N - torch.cat([F.new_zeros(1), F[:-1]]) ** N
        exact = float((bon * (bon / ref).log()).sum())
        # discreteness lowers the KL by O(N / K) relative; 1% leaves a wide margin at K = 20000
        assert exact <= oo.bon_kl(N) and abs(exact - oo.bon_kl(N)) < 0.01 * oo.bon_kl(N)


@pytest.mark.parametrize("n,N", [(5, 1), (6, 3), (7, 7), (200, 64)])
def test_best_of_n_weights_count_subsets(n, N):
    w = oo.best_of_n_weights(n, N)
    assert w.shape == (n,) and torch.isfinite(w).all()
    assert float(w.sum()) == pytest.approx(1.0)
    want = torch.tensor([math.comb(i, N - 1) / math.comb(n, N) for i in range(n)], dtype=torch.float64)
    assert torch.allclose(w, want, atol=1e-9)
    with pytest.raises(ValueError):
        oo.best_of_n_weights(3, 4)


def test_best_of_n_curve_equals_enumeration_over_subsets():
    g = torch.Generator().manual_seed(1)
    proxy, gold = torch.randn(2, 6, generator=g), torch.randn(2, 6, generator=g)
    out = oo.best_of_n_curve(proxy, gold, [1, 2, 4, 6], per_prompt=True)
    for k, N in enumerate([1, 2, 4, 6]):
        per_prompt = []
        for m in range(2):
            vals = [float(gold[m, max(s, key=lambda j: float(proxy[m, j]))]) for s in combinations(range(6), N)]
            per_prompt.append(np.mean(vals))
        assert float(out["gold_pp"][:, k].sum()) == pytest.approx(sum(per_prompt))
        assert float(out["gold"][k]) == pytest.approx(np.mean(per_prompt))
    assert float(out["gold"][0]) == pytest.approx(float(gold.mean()))    # N = 1 is the reference's mean
    assert float(out["proxy"][-1]) == pytest.approx(float(proxy.max(1).values.mean()))   # N = n: the top sample
    assert out["kl"].tolist() == pytest.approx(oo.bon_kl([1, 2, 4, 6]))


def test_best_of_n_curve_shape_errors():
    with pytest.raises(ValueError, match=r"\[M, n\]"):
        oo.best_of_n_curve(torch.zeros(3, 4), torch.zeros(3, 5), [1])
    with pytest.raises(ValueError):
        oo.best_of_n_curve(torch.zeros(3, 4), torch.zeros(3, 4), [5])


def test_a_perfect_proxy_never_hurts_and_an_anti_proxy_always_does():
    g = torch.Generator().manual_seed(2)
    gold = torch.randn(16, 32, generator=g)
    up = oo.best_of_n_curve(gold, gold, [1, 2, 4, 8, 16, 32])["gold"]
    down = oo.best_of_n_curve(-gold, gold, [1, 2, 4, 8, 16, 32])["gold"]
    assert (up.diff() > 0).all() and (down.diff() < 0).all()


def test_fits_recover_their_forms():
    kl = np.array(oo.bon_kl([1, 2, 4, 8, 16, 32, 64]))
    a, b = oo.fit_bon(kl, oo.bon_form(kl, 0.5, 0.3))
    assert (a, b) == pytest.approx((0.5, 0.3), abs=1e-9)
    kl_rl = np.linspace(0, 9, 12)
    a, b = oo.fit_rl(kl_rl, oo.rl_form(kl_rl, 0.4, 0.2))
    assert (a, b) == pytest.approx((0.4, 0.2), abs=1e-9)
    with pytest.raises(ValueError):
        oo.fit_bon([0.0, -1.0], [0.0, 0.0])
    with pytest.raises(ValueError):
        oo.fit_bon([0.0], [0.0])


def test_paired_bootstrap_brackets_the_mean_and_reacts_to_the_data():
    rng = np.random.default_rng(0)
    pos = rng.normal(0.5, 1.0, 400)
    m, lo, hi = oo.paired_bootstrap(pos)
    assert lo < m < hi and lo > 0
    m0, lo0, hi0 = oo.paired_bootstrap(rng.normal(0.0, 1.0, 400))
    assert lo0 < 0 < hi0
    with pytest.raises(ValueError):
        oo.paired_bootstrap([])
