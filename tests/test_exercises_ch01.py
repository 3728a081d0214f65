"""Chapter 01's exercises: the reference solutions pass their graders, typical wrong answers and the stub fail."""
from utils.exercises import grade
from utils.exercises.solutions import ch01


def test_chapter01_solutions_pass_and_wrong_ones_fail(capsys):
    import torch

    assert grade("01.1", ch01.reinforce_loss_with_baseline, verbose=False)
    assert grade("01.2", ch01.scst_advantages, verbose=False)
    assert grade("01.3", ch01.leave_one_out_baseline, verbose=False)
    # forgetting the padding mask; letting gradient flow through the baseline; averaging over tokens
    assert not grade("01.1", lambda lp, m, r, b: -((r - b)[:, None] * lp).sum() / lp.shape[0], verbose=False)
    assert not grade("01.1", lambda lp, m, r, b: -((r - b)[:, None] * lp * m).sum() / lp.shape[0], verbose=False)
    assert not grade("01.1", lambda lp, m, r, b: -((r - b).detach()[:, None] * lp * m).sum() / m.sum(), verbose=False)
    # the greedy rewards tiled in the wrong order (prompt-minor instead of prompt-major)
    assert not grade("01.2", lambda r, g, G: r - g.repeat(G), verbose=False)
    # the plain group mean (includes the sample itself)
    assert not grade("01.3", lambda r, G: r.view(-1, G).mean(1, keepdim=True).expand(-1, G).reshape(-1), verbose=False)
    assert torch.is_tensor(ch01.scst_advantages(torch.zeros(4), torch.zeros(2), 2))
    assert grade("01.6", ch01.signal_probability, verbose=False)
    # only "all wrong" counts as no signal (forgets that all-right groups teach nothing either)
    assert not grade("01.6", lambda p, G: 1 - (1 - p) ** G, verbose=False)
    # the chance that *some* pair of samples differs, computed for two samples only
    assert not grade("01.6", lambda p, G: 2 * p * (1 - p), verbose=False)
