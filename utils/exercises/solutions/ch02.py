"""Reference solutions to chapter 02's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations

from typing import Any, Callable


def turn_labels(tok, messages: list[dict[str, str]], turns) -> list[int]:
    """02.1: render growing prefixes of the conversation; assistant turn k's tokens are those between
    ``messages[:i]`` + generation prompt (the role marker stays context) and ``messages[:i+1]``, where ``i`` is
    the position of the k-th assistant message. ``turns`` count assistant turns only; negative = from the end."""

    def ids(msgs, gen=False):
        return list(tok.apply_chat_template(msgs, tokenize=True, return_dict=True, add_generation_prompt=gen)["input_ids"]) if msgs else []

    full = ids(messages)
    where = [i for i, m in enumerate(messages) if m["role"] == "assistant"]  # message index of each assistant turn
    labels = [-100] * len(full)
    for k in {k % len(where) for k in turns}:
        i = where[k]
        a, b = len(ids(messages[:i], gen=True)), len(ids(messages[: i + 1]))
        labels[a:b] = full[a:b]
    return labels


def last_turn_loss(logits, labels):
    """02.2: keep the last run of non-ignored labels in each row, then the batch's token-mean NLL."""
    import torch

    keep = labels != -100
    prev = torch.cat([torch.zeros_like(keep[:, :1]), keep[:, :-1]], dim=1)
    pos = torch.arange(labels.shape[1], device=labels.device).expand_as(labels)
    last_start = torch.where(keep & ~prev, pos, torch.full_like(pos, -1)).max(dim=1).values  # [B]
    labels = torch.where(keep & (pos >= last_start[:, None]), labels, torch.full_like(labels, -100))
    logp = logits[:, :-1].float().log_softmax(-1)
    y = labels[:, 1:]
    m = y != -100
    nll = -logp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (nll * m).sum() / m.sum().clamp(min=1)


# ---------------------------------------------------------------- typical wrong answers (each must fail its grader)
def _ids(tok, m, **kw) -> list[int]:
    return list(tok.apply_chat_template(m, tokenize=True, return_dict=True, **kw)["input_ids"])


def _labels_everything(tok, m, turns):  # loss on every token
    return _ids(tok, m)


def _labels_with_marker(tok, m, turns):  # also trains on the role marker before each chosen turn
    labels, full = turn_labels(tok, m, turns), _ids(tok, m)
    return [full[i] if labels[i] == -100 and i + 1 < len(labels) and labels[i + 1] != -100 else labels[i] for i in range(len(labels))]


def _labels_marked_only(tok, m, turns):  # relies on {% generation %} markers (and ignores turns)
    r = tok.apply_chat_template(m, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    return [i if k else -100 for i, k in zip(r["input_ids"], r["assistant_masks"])]


def _labels_every_turn(tok, m, turns):  # ignores turns
    from ...lm.batches import prefix_batch

    return prefix_batch(tok, [m], mode="assistant")["labels"][0].tolist()


def _labels_message_index(tok, m, turns):  # reads turns as indices into messages, not into the assistant turns
    picked = [sum(x["role"] == "assistant" for x in m[:i]) for i in (k % len(m) for k in turns) if m[i]["role"] == "assistant"]
    return turn_labels(tok, m, picked)


def _loss_every_turn(logits, labels):  # every assistant turn, not the last
    from ...lm.logprobs import token_mean_loss

    return token_mean_loss(logits, labels)


def _loss_per_row(logits, labels):  # a mean of per-row means, not the batch's token mean
    import torch

    return torch.stack([last_turn_loss(logits[i : i + 1], labels[i : i + 1]) for i in range(len(labels))]).mean()


def _loss_no_shift(logits, labels):  # position t scored on its own token t instead of on token t + 1
    import torch

    pad = torch.full_like(labels[:, :1], -100)
    return last_turn_loss(logits, torch.cat([pad, labels[:, :-1]], dim=1))


WRONG: dict[str, list[Callable[..., Any]]] = {
    "02.1": [_labels_everything, _labels_with_marker, _labels_marked_only, _labels_every_turn, _labels_message_index],
    "02.2": [_loss_every_turn, _loss_per_row, _loss_no_shift],
}
