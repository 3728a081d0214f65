"""Chapter 02's exercises: the reference solutions pass their graders, typical wrong answers and the stub fail."""
from utils.exercises import grade
from utils.exercises.solutions import ch02


def test_the_reference_solutions_pass():
    assert grade("02.1", ch02.turn_labels, verbose=False)
    assert grade("02.2", ch02.last_turn_loss, verbose=False)


def test_the_untouched_stubs_fail():
    def my_turn_labels(tok, messages, turns):
        raise NotImplementedError  # your code here

    def my_last_turn_loss(logits, labels):
        raise NotImplementedError  # your code here

    assert not grade("02.1", my_turn_labels, verbose=False)
    assert not grade("02.2", my_last_turn_loss, verbose=False)


def test_typical_wrong_labels_fail():
    from utils.lm.batches import prefix_batch

    def ids(tok, m, **kw):
        return list(tok.apply_chat_template(m, tokenize=True, return_dict=True, **kw)["input_ids"])

    everything = lambda tok, m, turns: ids(tok, m)  # noqa: E731  loss on every token
    assert not grade("02.1", everything, verbose=False)

    def with_marker(tok, m, turns):  # also trains on the role marker before each chosen turn
        labels, full = ch02.turn_labels(tok, m, turns), ids(tok, m)
        return [full[i] if labels[i] == -100 and i + 1 < len(labels) and labels[i + 1] != -100 else labels[i] for i in range(len(labels))]
    assert not grade("02.1", with_marker, verbose=False)

    def marked_only(tok, m, turns):  # relies on {% generation %} markers (and ignores turns)
        r = tok.apply_chat_template(m, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        return [i if k else -100 for i, k in zip(r["input_ids"], r["assistant_masks"])]
    assert not grade("02.1", marked_only, verbose=False)

    every_turn = lambda tok, m, turns: prefix_batch(tok, [m], mode="assistant")["labels"][0].tolist()  # noqa: E731  ignores turns
    assert not grade("02.1", every_turn, verbose=False)

    def message_index(tok, m, turns):  # reads turns as indices into messages, not into the assistant turns
        picked = [sum(x["role"] == "assistant" for x in m[:i]) for i in (k % len(m) for k in turns) if m[i]["role"] == "assistant"]
        return ch02.turn_labels(tok, m, picked)
    assert not grade("02.1", message_index, verbose=False)


def test_typical_wrong_losses_fail():
    import torch

    from utils.lm.logprobs import token_mean_loss

    assert not grade("02.2", token_mean_loss, verbose=False)  # every assistant turn, not the last

    def per_row(logits, labels):  # a mean of per-row means, not the batch's token mean
        return torch.stack([ch02.last_turn_loss(logits[i : i + 1], labels[i : i + 1]) for i in range(len(labels))]).mean()
    assert not grade("02.2", per_row, verbose=False)

    def no_shift(logits, labels):  # position t scored on its own token t instead of on token t + 1
        pad = torch.full_like(labels[:, :1], -100)
        return ch02.last_turn_loss(logits, torch.cat([pad, labels[:, :-1]], dim=1))
    assert not grade("02.2", no_shift, verbose=False)
