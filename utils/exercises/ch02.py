"""Graders of chapter 02's exercises: each test takes the student's function and raises ``AssertionError``
with a helpful message on failure (see :func:`utils.exercises.grade`)."""
from __future__ import annotations

from typing import Any, Callable

from .grader import Exercise

Test = Callable[[Callable[..., Any]], None]


# ---------------------------------------------------------------- 02.1: labels on chosen assistant turns, any template
#: a template with plain-text role headers (``user: ...<|end|>assistant: ...``): no special role tokens, no markers
PLAIN_TEMPLATE = ("{%- for message in messages -%}{{ message['role'] }}: {{ message['content'] }}<|end|>{%- endfor -%}"
                  "{%- if add_generation_prompt -%}assistant: {%- endif -%}")


def _no_marker_tokenizer(template: str | None = None):
    from ..lm.tokenizer import CHAT_TEMPLATE, build_tokenizer

    tok = build_tokenizer()
    tok.chat_template = template or CHAT_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    return tok


def _sft_conversations() -> list[list[dict[str, str]]]:
    from ..sft.data import dialogue_problems, is_dialogue
    from ..world import SYSTEM_PROMPT, sample_problems

    single = [p for p in sample_problems("strings", 1, 12, split="train", seed=7) if not is_dialogue(p)][:3]
    dialogues = dialogue_problems(2, 3, split="train", seed=7)
    convs = [p.messages() for p in single + dialogues]
    convs.append(dialogues[0].messages(system=SYSTEM_PROMPT[:40]))
    first = dialogues[1].messages()
    convs.append(first + [{"role": "user", "content": "now sort it"},
                          {"role": "assistant", "content": "<think></think><answer>x</answer>"}])  # three turns
    return convs


def _expected_turn_labels(tok, messages, turns) -> list[int]:
    """The reference: spans of the assistant turns from rendered prefixes (:func:`utils.lm.batches.turn_spans`)."""
    from ..lm.batches import turn_spans

    ids, spans = turn_spans(tok, messages)
    chosen = {k % len(spans) for k in turns}
    labels = [-100] * len(ids)
    for k in sorted(chosen):
        a, b = spans[k]
        labels[a:b] = ids[a:b]
    return labels


def _check_turn_labels(fn: Callable, tok, msgs, turns, where: str) -> None:
    want = _expected_turn_labels(tok, msgs, turns)
    ids = tok.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"]
    got = [int(x) for x in fn(tok, msgs, list(turns))]
    assert len(got) == len(ids), f"{where}: need one label per token of the rendered chat ({len(ids)}), got {len(got)}"
    if got != want:
        bad = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
        raise AssertionError(f"{where}, {len(msgs)}-message conversation, turns={list(turns)}: first wrong label at "
                             f"position {bad} (token {tok.decode([ids[bad]])!r}): expected {want[bad]}, got {got[bad]}")


def _t_turns_all(fn: Callable) -> None:
    """every assistant turn chosen, tiny template: each turn's content and <|end|> carry loss, nothing else"""
    from ..lm.tokenizer import build_tokenizer

    tok = build_tokenizer()
    for msgs in _sft_conversations():
        n = sum(m["role"] == "assistant" for m in msgs)
        _check_turn_labels(fn, tok, msgs, range(n), "tiny template")


def _t_turns_some(fn: Callable) -> None:
    """only the chosen assistant turns (0 = the first reply, -1 = the last), counted over assistant turns only"""
    from ..lm.tokenizer import build_tokenizer

    tok = build_tokenizer()
    convs = _sft_conversations()
    three, with_system = convs[-1], convs[-2]
    for msgs, turns in [(three, [0]), (three, [1]), (three, [-1]), (three, [0, 2]), (three, []),
                        (with_system, [0]), (with_system, [-1]), (convs[0], [-1])]:
        _check_turn_labels(fn, tok, msgs, turns, "tiny template")


def _t_turns_unmarked(fn: Callable) -> None:
    """works for templates WITHOUT {% generation %} markers, also with plain-text role headers (render prefixes)"""
    convs = _sft_conversations()
    for tok, where in [(_no_marker_tokenizer(), "tiny template without markers"),
                       (_no_marker_tokenizer(PLAIN_TEMPLATE), "plain-text template 'user: ...<|end|>assistant: ...'")]:
        for msgs, turns in [(convs[3], [0, 1]), (convs[-1], [1]), (convs[-1], [-1, 0]), (convs[1], [0])]:
            _check_turn_labels(fn, tok, msgs, turns, where)


# ---------------------------------------------------------------- 02.2: loss on the last turn only
def _last_turn_case(seed: int):
    import torch

    from ..lm.batches import marker_batch
    from ..lm.tokenizer import build_tokenizer

    convs = _sft_conversations()
    batch = marker_batch(build_tokenizer(), convs)
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(*batch["input_ids"].shape, 107, generator=g) * 3
    return convs, batch, logits


def _reference_last_turn(convs, logits):
    from ..lm.batches import sft_batch
    from ..lm.logprobs import token_mean_loss
    from ..lm.tokenizer import build_tokenizer

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
    from ..lm.logprobs import token_mean_loss

    convs, batch, logits = _last_turn_case(2)
    rows = slice(0, 3)  # the single-turn conversations
    want = float(token_mean_loss(logits[rows], batch["labels"][rows]))
    got = float(fn(logits[rows], batch["labels"][rows]))
    assert abs(got - want) < 1e-4, f"single-turn batch: expected the ordinary SFT loss {want:.5f}, got {got:.5f}"


def _t_last_turn_grad(fn: Callable) -> None:
    """returns a differentiable scalar with no gradient on earlier turns' positions"""
    import torch

    from ..lm.batches import sft_batch
    from ..lm.tokenizer import build_tokenizer

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


EXERCISES: dict[str, Exercise] = {
    "02.1": Exercise("SFT labels on chosen assistant turns, for any chat template", [_t_turns_all, _t_turns_some, _t_turns_unmarked],
                     "turn_labels"),
    "02.2": Exercise("the SFT loss on the last assistant turn only", [_t_last_turn_value, _t_last_turn_single, _t_last_turn_grad],
                     "last_turn_loss"),
}
