"""Chapter 02's exercises: the reference solutions pass their graders, typical wrong answers and the stub fail."""
from utils.exercises import grade
from utils.exercises.solutions import ch02


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
