"""Reference solutions to chapter 02's exercises (spoilers!). The test-suite checks that each passes its grader."""
from __future__ import annotations


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
