"""The exercise grader: reference solutions pass, wrong ones fail, unfinished ones don't crash."""
from utils.exercises import grade
from utils.exercises.solutions import ch00, ch01, ch02, ch03, ch04


def test_reference_solutions_pass():
    assert grade("00.1", ch00.pass_at_k, verbose=False)
    assert grade("00.2", ch00.half_credit_reward, verbose=False)


def test_wrong_and_unfinished_solutions_fail(capsys):
    assert not grade("00.1", lambda n, c, k: c / n)  # the biased "fraction correct" estimate
    assert not grade("00.2", lambda p, t: 1.0 if "<answer>" in t else 0.0)  # crashes on None
    def todo(*a):
        raise NotImplementedError
    assert not grade("00.1", todo)
    out = capsys.readouterr().out
    assert "not implemented yet" in out and "0/3 tests passed" in out


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


def test_chapter_02_exercises():
    import torch

    from utils.lm.logprobs import token_mean_loss

    assert grade("02.1", ch02.assistant_labels, verbose=False)
    assert grade("02.2", ch02.last_turn_loss, verbose=False)
    # wrong answers: loss on every token; on the role marker too; the ordinary all-turns loss; a per-row mean
    everything = lambda tok, m: list(tok.apply_chat_template(m, tokenize=True, return_dict=True)["input_ids"])  # noqa: E731
    assert not grade("02.1", everything, verbose=False)
    def with_marker(tok, m):  # also trains on the <|assistant|> role marker before each turn
        labels = ch02.assistant_labels(tok, m)
        ids = tok.apply_chat_template(m, tokenize=True, return_dict=True)["input_ids"]
        return [ids[i] if labels[i] == -100 and i + 1 < len(labels) and labels[i + 1] != -100 else labels[i] for i in range(len(labels))]
    assert not grade("02.1", with_marker, verbose=False)
    marked_only = lambda tok, m: [i if k else -100 for i, k in zip(*(lambda r: (r["input_ids"], r["assistant_masks"]))(
        tok.apply_chat_template(m, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)))]  # noqa: E731
    assert not grade("02.1", marked_only, verbose=False)  # relies on {% generation %} markers
    assert not grade("02.2", token_mean_loss, verbose=False)
    def per_row(logits, labels):
        return torch.stack([ch02.last_turn_loss(logits[i : i + 1], labels[i : i + 1]) for i in range(len(labels))]).mean()
    assert not grade("02.2", per_row, verbose=False)


def test_chapter_04_exercises():
    assert grade("04.1", ch04.lora_forward, verbose=False)
    assert grade("04.2", ch04.lora_trainable_params, verbose=False)
    assert grade("04.3", ch04.merge_lora_weight, verbose=False)
    # wrong answers: no alpha/r scaling; scale alpha instead of alpha/r; bias forgotten
    assert not grade("04.1", lambda x, W, b, A, B, a: x @ W.T + (b if b is not None else 0) + x @ A.T @ B.T, verbose=False)
    assert not grade("04.1", lambda x, W, b, A, B, a: x @ W.T + (b if b is not None else 0) + a * x @ A.T @ B.T, verbose=False)
    assert not grade("04.1", lambda x, W, b, A, B, a: x @ W.T + (a / A.shape[0]) * x @ A.T @ B.T, verbose=False)
    # wrong counts: a full-rank r*in*out; counting only A
    assert not grade("04.2", lambda shapes, r: sum(r * o * i for o, i in shapes), verbose=False)
    assert not grade("04.2", lambda shapes, r: sum(r * i for o, i in shapes), verbose=False)
    # wrong merges: no scaling; in place
    assert not grade("04.3", lambda W, A, B, a: W + B @ A, verbose=False)
    assert not grade("04.3", lambda W, A, B, a: W.add_((a / A.shape[0]) * (B @ A)), verbose=False)


def test_chapter_03_exercises():
    from utils.world import score

    assert grade("03.1", ch03.rft_filter, verbose=False)
    assert grade("03.2", ch03.forgetting, verbose=False)
    # wrong answers: keep by the verifier only (format ignored); no de-duplication; crash on None
    verifier_only = lambda probs, samples, m=None: [(p, t) for p, ts in zip(probs, samples) for t in ts  # noqa: E731
                                                    if isinstance(t, str) and score(p, t) == 1.0][: m or None]
    assert not grade("03.1", verifier_only, verbose=False)
    no_dedupe = lambda probs, samples, m=None: [(p, t.strip()) for p, ts in zip(probs, samples) for t in ts  # noqa: E731
                                                if isinstance(t, str) and ch03.rft_filter([p], [[t]])]
    assert not grade("03.1", no_dedupe, verbose=False)
    assert not grade("03.1", lambda probs, samples, m=None: [(p, t) for p, ts in zip(probs, samples) for t in ts if "<answer>" in t], verbose=False)
    # wrong answers: all skills averaged (trained ones included); clipped at zero; after - before
    assert not grade("03.2", lambda b, a, tr: sum(b[s] - a[s] for s in b) / len(b), verbose=False)
    assert not grade("03.2", lambda b, a, tr: ch03.forgetting({s: max(b[s], a[s]) for s in b}, a, tr), verbose=False)
    assert not grade("03.2", lambda b, a, tr: -ch03.forgetting(b, a, tr), verbose=False)
