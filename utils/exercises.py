"""Tests for the notebooks' exercises, keyed by exercise id (``"<notebook>.<n>"``). See :mod:`utils.grader`.

Each test takes the student's function and raises ``AssertionError`` with a helpful message on failure.
"""
from __future__ import annotations

import itertools
import random
from math import comb
from typing import Any, Callable

Test = Callable[[Callable[..., Any]], None]


# ---------------------------------------------------------------- 00.1: unbiased pass@k
def _brute_pass_at_k(n: int, c: int, k: int) -> float:
    outcomes = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)


def _t_pass_edge(fn: Callable) -> None:
    """edge cases: c=0 gives 0, c=n gives 1, k=1 gives c/n"""
    assert abs(fn(10, 0, 3) - 0.0) < 1e-9, f"pass@3 with no correct sample should be 0, got {fn(10, 0, 3)}"
    assert abs(fn(10, 10, 3) - 1.0) < 1e-9, f"pass@3 with all samples correct should be 1, got {fn(10, 10, 3)}"
    assert abs(fn(10, 3, 1) - 0.3) < 1e-9, f"pass@1 is c/n = 0.3, got {fn(10, 3, 1)}"


def _t_pass_brute(fn: Callable) -> None:
    """agrees with brute-force enumeration of all k-subsets for n <= 8"""
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                want, got = _brute_pass_at_k(n, c, k), fn(n, c, k)
                assert abs(got - want) < 1e-9, f"n={n}, c={c}, k={k}: expected {want:.6f}, got {got}"


def _t_pass_large(fn: Callable) -> None:
    """stays finite and exact for large n (no factorial overflow)"""
    got = fn(1000, 7, 100)
    want = 1 - comb(993, 100) / comb(1000, 100)
    assert abs(got - want) < 1e-9, f"n=1000, c=7, k=100: expected {want:.6f}, got {got}"


# ---------------------------------------------------------------- 00.2: a reward that never crashes
def _t_reward_values(fn: Callable) -> None:
    """1.0 for a correct well-formed answer, 0.5 for well-formed but wrong, 0.0 otherwise"""
    from .countdown import make_problem

    p = make_problem([3, 5, 7], 26)
    cases = [("<think>7*3=21,21+5=26</think><answer>(7*3)+5</answer>", 1.0),
             ("<think></think><answer>5+(3*7)</answer>", 1.0),
             ("<think>7*3=21</think><answer>7*3</answer>", 0.5),
             ("<answer>(7*3)+5</answer>", 0.0), ("(7*3)+5", 0.0), ("", 0.0)]
    for text, want in cases:
        got = fn(p, text)
        assert got == want, f"reward({text!r}) should be {want}, got {got}"


def _t_reward_garbage(fn: Callable) -> None:
    """never raises on garbage: None, bytes, huge strings, unbalanced tags, random characters"""
    from .countdown import make_problem

    p = make_problem([3, 5, 7], 26)
    rng = random.Random(0)
    junk: list[Any] = [None, 42, b"<answer>1</answer>", "<answer>", "</answer><answer>", "<think>" * 1000,
                       "<think></think><answer>" + "9" * 5000 + "</answer>", "<think></think><answer>1/0</answer>",
                       "<think></think><answer>((((((((</answer>"]
    junk += ["".join(rng.choice("<>/thinkanswer()+-*0123456789 ") for _ in range(rng.randint(0, 80))) for _ in range(200)]
    for j in junk:
        try:
            r = fn(p, j)
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"raised {type(e).__name__} on input {str(j)[:60]!r}") from None
        assert r in (0.0, 0.5, 1.0), f"reward must be 0, 0.5 or 1, got {r!r} for {str(j)[:60]!r}"


# ---------------------------------------------------------------- 01.1: the REINFORCE loss with a baseline
def _t_reinforce_grad(fn: Callable) -> None:
    """its gradient is -(1/B) * sum_b (r_b - baseline_b) * sum_t grad log pi(y_bt | s_bt), padding excluded"""
    import torch

    g = torch.Generator().manual_seed(0)
    logp = torch.randn(4, 6, generator=g).requires_grad_(True)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0]])
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0])
    baseline = torch.tensor([0.25, 0.5, 0.5, 0.75])
    loss = fn(logp, mask, rewards, baseline)
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0, "return a scalar tensor"
    (grad,) = torch.autograd.grad(loss, logp)
    want = -((rewards - baseline)[:, None] * mask) / 4
    assert torch.allclose(grad, want, atol=1e-6), (
        f"gradient wrong; for sequence 0 (reward 1, baseline 0.25, 3 real tokens) expected "
        f"{want[0].tolist()}, got {grad[0].tolist()}")


def _t_reinforce_toy(fn: Callable) -> None:
    """on a one-token categorical policy it gives the score-function estimate (r - b)(onehot(a) - p)"""
    import torch

    theta = torch.tensor([0.3, -1.0, 2.0], requires_grad=True)
    actions = torch.tensor([2, 0, 2])
    logp = theta.log_softmax(-1)[actions][:, None]
    rewards = torch.tensor([1.0, 0.0, 0.0])
    baseline = torch.full((3,), 1 / 3)
    (grad,) = torch.autograd.grad(fn(logp, torch.ones(3, 1), rewards, baseline), theta)
    p = theta.detach().softmax(-1)
    onehot = torch.nn.functional.one_hot(actions, 3).float()
    want = -((rewards - baseline)[:, None] * (onehot - p)).mean(0)
    assert torch.allclose(grad, want, atol=1e-6), f"expected gradient {want.tolist()}, got {grad.tolist()}"


def _t_reinforce_detached(fn: Callable) -> None:
    """the baseline is a constant: no gradient flows through it, even when it was computed from the model"""
    import torch

    logp = torch.randn(3, 2).requires_grad_(True)
    mask = torch.ones(3, 2)
    rewards = torch.tensor([1.0, 0.0, 1.0])
    baseline = logp.sum(-1).exp()  # a (silly) baseline that depends on the parameters
    (grad,) = torch.autograd.grad(fn(logp, mask, rewards, baseline), logp)
    want = -((rewards - baseline.detach())[:, None] * mask) / 3
    assert torch.allclose(grad, want, atol=1e-6), "detach the advantage (reward - baseline) before multiplying"


# ---------------------------------------------------------------- 01.2: SCST advantages
def _t_scst_values(fn: Callable) -> None:
    """A = r(sample) - r(greedy answer of the same prompt), rows prompt-major"""
    import torch

    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])  # 3 prompts x 3 samples
    greedy = torch.tensor([1.0, 0.0, 1.0])
    got = fn(rewards, greedy, 3)
    want = torch.tensor([0.0, -1.0, -1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0])
    assert isinstance(got, torch.Tensor) and got.shape == (9,), f"expected a [9] tensor, got {getattr(got, 'shape', got)}"
    assert torch.allclose(got.float(), want), (
        f"expected {want.tolist()}, got {got.tolist()} (rows i*G..i*G+G-1 belong to prompt i: "
        "repeat each greedy reward G times in a row, not the whole vector G times)")


def _t_scst_group_one(fn: Callable) -> None:
    """works with one sample per prompt and with non-binary rewards"""
    import torch

    rewards = torch.tensor([0.2, 0.9, 0.5])
    greedy = torch.tensor([0.5, 0.5, 0.5])
    got = fn(rewards, greedy, 1)
    assert torch.allclose(got.float(), rewards - greedy), f"expected {(rewards - greedy).tolist()}, got {got.tolist()}"


# ---------------------------------------------------------------- 01.3: the leave-one-out baseline
def _t_loo_values(fn: Callable) -> None:
    """b_i = mean reward of the other G-1 samples of the same prompt"""
    import torch

    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0])  # 2 prompts x 4
    got = fn(rewards, 4)
    want = torch.tensor([2 / 3, 1.0, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 1 / 3, 0.0])
    assert isinstance(got, torch.Tensor) and got.shape == (8,), f"expected a [8] tensor, got {getattr(got, 'shape', got)}"
    assert torch.allclose(got.float(), want, atol=1e-6), f"expected {want.tolist()}, got {got.tolist()}"


def _t_loo_independent(fn: Callable) -> None:
    """b_i does not change when r_i changes (that is what makes it unbiased)"""
    import torch

    g = torch.Generator().manual_seed(1)
    rewards = torch.rand(12, generator=g)
    for i in (0, 5, 11):
        bumped = rewards.clone()
        bumped[i] += 3.0
        a, b = fn(rewards, 3), fn(bumped, 3)
        assert torch.allclose(a[i], b[i]), f"baseline of sample {i} changed when its own reward changed"
        assert not torch.allclose(a, b), "the baselines of the other samples of that prompt should change"


# ---------------------------------------------------------------- 02.1: assistant-only labels, any template
def _no_marker_tokenizer():
    from .tokenizer import CHAT_TEMPLATE, build_tokenizer

    tok = build_tokenizer()
    tok.chat_template = CHAT_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    return tok


def _sft_conversations() -> list[list[dict[str, str]]]:
    from .sft import dialogue_problems, is_dialogue
    from .world import SYSTEM_PROMPT, sample_problems

    single = [p for p in sample_problems("strings", 1, 12, split="train", seed=7) if not is_dialogue(p)][:3]
    dialogues = dialogue_problems(2, 3, split="train", seed=7)
    convs = [p.messages() for p in single + dialogues]
    convs.append(dialogues[0].messages(system=SYSTEM_PROMPT[:40]))
    first = dialogues[1].messages()
    convs.append(first + [{"role": "user", "content": "now sort it"},
                          {"role": "assistant", "content": "<think></think><answer>x</answer>"}])  # three turns
    return convs


def _expected_labels(tok, messages) -> list[int]:
    from .tokenizer import build_tokenizer
    from .training import chat_batch

    ref = chat_batch(build_tokenizer(), [messages])  # the {% generation %} markers' answer
    return ref["labels"][0].tolist()


def _t_labels_marked(fn: Callable) -> None:
    """single- and multi-turn conversations, tiny template: every assistant turn (content + <|end|>), nothing else"""
    from .tokenizer import build_tokenizer

    tok = build_tokenizer()
    for msgs in _sft_conversations():
        want = _expected_labels(tok, msgs)
        got = list(fn(tok, msgs))
        ids = tok.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"]
        assert len(got) == len(ids), f"need one label per token of the rendered chat ({len(ids)}), got {len(got)}"
        if got != want:
            bad = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
            raise AssertionError(f"{len(msgs)}-message conversation: first wrong label at position {bad} "
                                 f"(token {tok.decode([ids[bad]])!r}): expected {want[bad]}, got {got[bad]}")


def _t_labels_unmarked(fn: Callable) -> None:
    """works for a template WITHOUT {% generation %} markers (build the mask from the template's prefixes)"""
    tok = _no_marker_tokenizer()
    for msgs in _sft_conversations():
        want = _expected_labels(tok, msgs)
        got = list(fn(tok, msgs))
        assert got == want, (f"{len(msgs)}-message conversation: labels differ from the reference "
                             f"({sum(a != b for a, b in zip(got, want))} positions)")


# ---------------------------------------------------------------- 02.2: loss on the last turn only
def _last_turn_case(seed: int):
    import torch

    from .tokenizer import build_tokenizer
    from .training import chat_batch

    convs = _sft_conversations()
    batch = chat_batch(build_tokenizer(), convs)
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(*batch["input_ids"].shape, 107, generator=g) * 3
    return convs, batch, logits


def _reference_last_turn(convs, logits):
    from .sft import sft_batch, token_mean_loss
    from .tokenizer import build_tokenizer

    last = sft_batch(build_tokenizer(), convs, mode="last")
    return token_mean_loss(logits, last["labels"])


def _t_last_turn_value(fn: Callable) -> None:
    """equals the mean NLL over the tokens of each conversation's final assistant turn (whole batch, token mean)"""
    for seed in (0, 1):
        convs, batch, logits = _last_turn_case(seed)
        want = float(_reference_last_turn(convs, logits))
        got = float(fn(logits, batch["labels"]))
        assert abs(got - want) < 1e-4, f"expected {want:.5f}, got {got:.5f}"


def _t_last_turn_single(fn: Callable) -> None:
    """single-turn rows are unchanged: there the last turn is the only one"""
    from .sft import token_mean_loss

    convs, batch, logits = _last_turn_case(2)
    rows = slice(0, 3)  # the single-turn conversations
    want = float(token_mean_loss(logits[rows], batch["labels"][rows]))
    got = float(fn(logits[rows], batch["labels"][rows]))
    assert abs(got - want) < 1e-4, f"single-turn batch: expected the ordinary SFT loss {want:.5f}, got {got:.5f}"


def _t_last_turn_grad(fn: Callable) -> None:
    """returns a differentiable scalar with no gradient on earlier turns' positions"""
    import torch

    from .sft import sft_batch
    from .tokenizer import build_tokenizer

    convs, batch, logits = _last_turn_case(3)
    logits = logits.clone().requires_grad_(True)
    out = fn(logits, batch["labels"])
    assert isinstance(out, torch.Tensor) and out.dim() == 0, "return a 0-dim tensor"
    out.backward()
    last = sft_batch(build_tokenizer(), convs, mode="last")["labels"]
    predicts_last = torch.zeros_like(last, dtype=torch.bool)
    predicts_last[:, :-1] = last[:, 1:] != -100  # position t predicts token t+1
    stray = logits.grad.abs().sum(-1)[~predicts_last]
    assert float(stray.max()) < 1e-7, "gradient flows into positions that do not predict a last-turn token"


# ---------------------------------------------------------------- 01.6: when does a group carry a learning signal?
def _t_signal_values(fn: Callable) -> None:
    """P[signal] = 1 - (1-p)^G - p^G: zero at p = 0 and p = 1, 1/2 for a fair coin and G = 2"""
    cases = [(0.0, 8, 0.0), (1.0, 8, 0.0), (0.5, 2, 0.5), (0.2, 8, 1 - 0.8**8 - 0.2**8), (0.05, 16, 1 - 0.95**16 - 0.05**16)]
    for p, G, want in cases:
        got = float(fn(p, G))
        assert abs(got - want) < 1e-9, f"p={p}, G={G}: expected {want:.6f}, got {got:.6f}"


def _t_signal_one_sample(fn: Callable) -> None:
    """a group of one sample never disagrees with itself, and more samples never hurt"""
    for p in (0.0, 0.1, 0.5, 0.9):
        assert abs(float(fn(p, 1))) < 1e-12, f"G=1, p={p}: a single sample always 'agrees' with its group, expected 0"
    for p in (0.01, 0.3, 0.7):
        vals = [float(fn(p, G)) for G in (2, 4, 8, 16, 64)]
        assert all(b >= a - 1e-12 for a, b in zip(vals, vals[1:])), f"p={p}: P[signal] should grow with G, got {vals}"


def _t_signal_simulated(fn: Callable) -> None:
    """agrees with a simulation of 0/1 rewards (within Monte-Carlo error)"""
    rng = random.Random(0)
    for p, G in ((0.1, 4), (0.6, 8)):
        trials = 20000
        mixed = sum(len({rng.random() < p for _ in range(G)}) == 2 for _ in range(trials)) / trials
        got = float(fn(p, G))
        assert abs(got - mixed) < 0.02, f"p={p}, G={G}: simulated {mixed:.3f}, yours {got:.3f}"


EXERCISES: dict[str, tuple[str, list[Test]]] = {
    "00.1": ("the unbiased pass@k estimator", [_t_pass_edge, _t_pass_brute, _t_pass_large]),
    "00.2": ("a reward function that never crashes", [_t_reward_values, _t_reward_garbage]),
    "02.1": ("assistant-only SFT labels for any chat template", [_t_labels_marked, _t_labels_unmarked]),
    "02.2": ("the SFT loss on the last assistant turn only", [_t_last_turn_value, _t_last_turn_single, _t_last_turn_grad]),
    "01.1": ("the REINFORCE loss with a baseline", [_t_reinforce_grad, _t_reinforce_toy, _t_reinforce_detached]),
    "01.2": ("self-critical (SCST) advantages", [_t_scst_values, _t_scst_group_one]),
    "01.3": ("the leave-one-out baseline", [_t_loo_values, _t_loo_independent]),
    "01.6": ("the chance that a group carries a learning signal", [_t_signal_values, _t_signal_one_sample, _t_signal_simulated]),
}


# ---------------------------------------------------------------- 04.1-04.3: LoRA (chapter 04)
def _lora_ref(x, W, b, A, B, alpha):
    return x @ W.T + (b if b is not None else 0) + (alpha / A.shape[0]) * (x @ A.T) @ B.T


def _lora_case(seed: int, out_f: int = 6, in_f: int = 5, r: int = 3):
    import torch

    g = torch.Generator().manual_seed(seed)
    return (torch.randn(2, 4, in_f, generator=g), torch.randn(out_f, in_f, generator=g), torch.randn(out_f, generator=g),
            torch.randn(r, in_f, generator=g), torch.randn(out_f, r, generator=g))


def _t_lora_zero_b(fn: Callable) -> None:
    """with B = 0 the layer is exactly the frozen linear layer x W^T + b"""
    import torch

    x, W, b, A, B = _lora_case(0)
    got = fn(x, W, b, A, torch.zeros_like(B), 16.0)
    assert tuple(got.shape) == (2, 4, 6), f"output shape should be [2, 4, 6] for x [2, 4, 5] and W [6, 5], got {tuple(got.shape)}"
    assert torch.allclose(got, x @ W.T + b, atol=1e-5), "with B = 0 the output must equal x @ W.T + b"


def _t_lora_value(fn: Callable) -> None:
    """adds (alpha / r) * x A^T B^T, for several ranks, alphas and non-square layers"""
    import torch

    for seed, (out_f, in_f, r, alpha) in enumerate([(6, 5, 3, 6.0), (4, 9, 1, 2.0), (7, 7, 4, 16.0)]):
        x, W, b, A, B = _lora_case(seed, out_f, in_f, r)
        got, want = fn(x, W, b, A, B, alpha), _lora_ref(x, W, b, A, B, alpha)
        if not torch.allclose(got, want, atol=1e-4):
            no_scale = _lora_ref(x, W, b, A, B, float(r))
            hint = " (did you forget the alpha / r scaling?)" if torch.allclose(got, no_scale, atol=1e-4) else ""
            hint = hint or (" (the scale is alpha / r, not alpha)" if torch.allclose(got, _lora_ref(x, W, b, A, B, alpha * r), atol=1e-4) else "")
            raise AssertionError(f"out={out_f}, in={in_f}, r={r}, alpha={alpha}: max error {(got - want).abs().max():.3g}{hint}")


def _t_lora_no_bias(fn: Callable) -> None:
    """works without a bias (b=None), as in Llama's projections"""
    import torch

    x, W, _, A, B = _lora_case(3)
    assert torch.allclose(fn(x, W, None, A, B, 4.0), _lora_ref(x, W, None, A, B, 4.0), atol=1e-4), "wrong output with b=None"


def _t_count_small(fn: Callable) -> None:
    """r * (in + out) per layer, summed: hand-checked cases"""
    cases = [([(128, 128)], 8, 2048), ([(512, 128), (128, 512)], 4, 5120), ([(10, 3), (3, 10), (7, 7)], 1, 40), ([], 8, 0)]
    for shapes, r, want in cases:
        got = fn(shapes, r)
        assert got == want, f"shapes {shapes}, r={r}: expected {want}, got {got}"


def _t_count_llama(fn: Callable) -> None:
    """matches the adapters actually injected into every linear layer of a small Llama"""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from .lora import inject_lora, linear_shapes, trainable_parameters

    cfg = LlamaConfig(vocab_size=40, hidden_size=24, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=32)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    shapes = linear_shapes(model, targets)
    for r in (1, 3):
        m = LlamaForCausalLM(cfg)
        inject_lora(m, targets, r=r, alpha=8)
        want = trainable_parameters(m)[0]
        got = fn(shapes, r)
        assert got == want, f"r={r}: the injected adapters have {want} parameters, your count is {got} (shapes {shapes})"


def _t_merge(fn: Callable) -> None:
    """W + (alpha / r) B A: same shape as W, and the merged layer computes the LoRA forward"""
    import torch

    for seed, (out_f, in_f, r, alpha) in enumerate([(6, 5, 3, 6.0), (3, 8, 2, 16.0)]):
        x, W, b, A, B = _lora_case(seed, out_f, in_f, r)
        W2 = fn(W, A, B, alpha)
        assert tuple(W2.shape) == tuple(W.shape), f"merged weight must have W's shape {tuple(W.shape)}, got {tuple(W2.shape)}"
        assert torch.allclose(x @ W2.T + b, _lora_ref(x, W, b, A, B, alpha), atol=1e-4), \
            f"out={out_f}, in={in_f}, r={r}: x @ merged.T + b differs from the LoRA forward"
        assert torch.equal(W, _lora_case(seed, out_f, in_f, r)[1]), "don't modify W in place"


EXERCISES.update({
    "04.1": ("the LoRA forward pass", [_t_lora_zero_b, _t_lora_value, _t_lora_no_bias]),
    "04.2": ("counting LoRA's trainable parameters", [_t_count_small, _t_count_llama]),
    "04.3": ("merging a LoRA update into the weight", [_t_merge]),
})


# ---------------------------------------------------------------- 03.1: the rejection-sampling filter
def _rft_case():
    from .countdown import make_problem

    p = make_problem([3, 5, 7], 26, ["7*3=21", "21+5=26"], "(7*3)+5")
    q = make_problem([2, 4, 6], 14, ["4*2=8", "8+6=14"], "(4*2)+6")
    good = "<think>7*3=21,21+5=26</think><answer>(7*3)+5</answer>"
    good2 = "<think>3*7=21,5+21=26</think><answer>5+3*7</answer>"
    return p, q, good, good2


def _t_rft_filter(fn: Callable) -> None:
    """keeps exactly the verified, well-formed samples, as (problem, text) pairs in sample order"""
    p, q, good, good2 = _rft_case()
    wrong = "<think>7*3=21</think><answer>7*3</answer>"
    sloppy = "the answer is <answer>(7*3)+5</answer>"  # right answer, but not in the format
    got = list(fn([p, q], [[wrong, good, sloppy, good2], [wrong, "<think></think><answer>6*2+4</answer>"]], None))
    want = [(p, good), (p, good2)]
    assert [(a, b.strip()) for a, b in got] == want, f"expected {[(a.prompt, b) for a, b in want]}, got {[(a.prompt, b) for a, b in got]}"


def _t_rft_dedupe_cap(fn: Callable) -> None:
    """drops duplicates (same text up to surrounding whitespace) and keeps at most max_per_problem per problem"""
    p, q, good, good2 = _rft_case()
    q_good = "<think>4*2=8,8+6=14</think><answer>(4*2)+6</answer>"
    samples = [[good, " " + good + "\n", good2, good], [q_good, q_good]]
    got = [(a, b.strip()) for a, b in fn([p, q], samples, None)]
    assert got == [(p, good), (p, good2), (q, q_good)], f"duplicates should be kept once, got {len(got)} pairs: {got}"
    got1 = [(a, b.strip()) for a, b in fn([p, q], samples, 1)]
    assert got1 == [(p, good), (q, q_good)], f"max_per_problem=1 should keep the first correct sample of each problem, got {got1}"


def _t_rft_garbage(fn: Callable) -> None:
    """never raises on odd samples (None, numbers, unbalanced tags, huge strings) and keeps none of them"""
    p, q, _, _ = _rft_case()
    junk = [None, 7, "", "<answer>", "<think></think><answer>((((</answer>", "<think>" * 500, "<answer>" + "9" * 3000 + "</answer>"]
    try:
        got = list(fn([p, q], [junk, junk[::-1]], 2))
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"raised {type(e).__name__} on odd samples") from None
    assert got == [], f"nothing here is a correct solution, got {got}"


# ---------------------------------------------------------------- 03.2: the forgetting metric
def _t_forget_values(fn: Callable) -> None:
    """mean over the skills NOT trained of (accuracy before - accuracy after)"""
    before = {"countdown-3": 0.40, "addition-2": 0.95, "addition-3": 0.90, "addition-4": 0.80}
    after = {"countdown-3": 0.60, "addition-2": 0.93, "addition-3": 0.70, "addition-4": 0.50}
    got = fn(before, after, ["countdown-3"])
    want = (0.02 + 0.20 + 0.30) / 3
    assert abs(got - want) < 1e-9, f"expected {want:.4f}, got {got}"
    got2 = fn(before, after, ["countdown-3", "addition-4"])
    assert abs(got2 - 0.11) < 1e-9, f"with addition-4 also trained, expected (0.02 + 0.20) / 2 = 0.11, got {got2}"


def _t_forget_sign(fn: Callable) -> None:
    """zero when nothing changes; negative (not clipped) when the held-out skills improve"""
    before = {"a": 0.5, "b": 0.6, "c": 0.1}
    assert abs(fn(before, dict(before), ["a"])) < 1e-12, "no change should give 0"
    after = {"a": 0.9, "b": 0.7, "c": 0.3}
    got = fn(before, after, ["a"])
    assert abs(got - (-0.15)) < 1e-9, f"improvements are negative forgetting (backward transfer): expected -0.15, got {got}"


EXERCISES.update({
    "03.1": ("the rejection-sampling filter", [_t_rft_filter, _t_rft_dedupe_cap, _t_rft_garbage]),
    "03.2": ("the forgetting metric", [_t_forget_values, _t_forget_sign]),
})
