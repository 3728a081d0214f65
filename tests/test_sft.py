"""utils.sft: loss masks for any chat template, the SFT losses, and agreement with TRL's SFTTrainer."""

import pytest
import torch

from utils import sft, world
from utils.lm.batches import loss_mask, marker_batch, sft_batch
from utils.lm.logprobs import IGNORE, loss_sum_and_count, mle_loss, sequence_mean_loss, token_mean_loss
from utils.lm.models import new_tiny_model
from utils.lm.tokenizer import build_tokenizer
from utils.numerics import grads, rel_error


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


@pytest.fixture(scope="module")
def problems():
    return world.sample_problems("strings", 1, 12, split="train", seed=3) + sft.dialogue_problems(2, 4, seed=3)


def test_dialogue_problems_are_second_turns():
    ps = sft.dialogue_problems(1, 10, split="test", seed=1)
    assert len(ps) == 10 and all(sft.is_dialogue(p) and p.split == "test" for p in ps)
    assert len({p.uid for p in ps}) == 10
    assert all(p.prompt.startswith("now ") for p in ps)


def test_prefix_masks_equal_generation_marker_masks(tok, problems):
    """On the tiny template, the prefix method and {% generation %} markers give identical labels."""
    convs = sft.conversations(problems, cot=False)
    a, b = marker_batch(tok, convs), sft_batch(tok, convs, mode="assistant")
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_mask_modes(tok, problems):
    d = next(p for p in problems if sft.is_dialogue(p))
    msgs = d.messages()
    b = sft_batch(tok, [msgs], mode="assistant")
    text = sft.mask_text(tok, b["input_ids"][0], b["labels"][0])
    assert text.count("[[") == 2  # both assistant turns
    assert "[[<|assistant|>" not in text and "<|assistant|>[[<think>" in text  # role marker is context
    assert text.endswith("<|end|>]]")  # the end-of-turn token is learned
    last = sft.mask_text(tok, *[sft_batch(tok, [msgs], mode="last")[k][0] for k in ("input_ids", "labels")])
    assert last.count("[[") == 1 and last.endswith(f"<answer>{d.answer}</answer><|end|>]]")
    every = sft_batch(tok, [msgs], mode="all")
    assert (every["labels"][0] != IGNORE).all()
    with pytest.raises(ValueError):
        loss_mask(tok, msgs, mode="users")


def test_padding_never_carries_loss(tok, problems):
    b = sft_batch(tok, sft.conversations(problems, cot=False))
    assert ((b["attention_mask"] == 0) <= (b["labels"] == IGNORE)).all()
    assert b["input_ids"].shape == b["labels"].shape == b["attention_mask"].shape
    short = sft_batch(tok, sft.conversations(problems, cot=False), max_length=10)
    assert short["input_ids"].shape[1] == 10


def test_mask_views(tok, problems):
    b = sft_batch(tok, sft.conversations(problems[:2], cot=False))
    rows = sft.mask_rows(tok, b["input_ids"][0], b["labels"][0], b["attention_mask"][0])
    assert len(rows) == int(b["attention_mask"][0].sum())
    assert rows[0]["token"] == "<|user|>" and not rows[0]["loss"] and rows[-1]["token"] == "<|end|>" and rows[-1]["loss"]
    h = sft.mask_html(tok, b["input_ids"][0], b["labels"][0], b["attention_mask"][0])
    assert h.count("<span") == len(rows) + 2 and "&lt;|user|&gt;" in h


def test_prefix_masks_work_for_smollm2_template(problems, smollm2_dir):
    from transformers import AutoTokenizer

    stok = AutoTokenizer.from_pretrained(smollm2_dir)
    assert "{% generation %}" not in stok.chat_template
    d = next(p for p in problems if sft.is_dialogue(p))
    b = sft_batch(stok, [d.messages(system=world.SYSTEM_PROMPT)])
    text = sft.mask_text(stok, b["input_ids"][0], b["labels"][0])
    assert text.count("[[") == 2 and "assistant\n[[<think>" in text and "[[<|im_start|>" not in text
    assert text.rstrip().endswith("<|im_end|>\n]]")


def test_loss_reductions():
    torch.manual_seed(0)
    logits = torch.randn(3, 7, 11)
    labels = torch.randint(0, 11, (3, 7))
    labels[0, :5] = IGNORE  # row 0 has 2 loss tokens after the shift, row 1 has 6
    labels[2] = IGNORE  # a row without loss tokens
    tm = token_mean_loss(logits, labels)
    assert torch.allclose(tm, mle_loss(logits, labels), atol=1e-6)
    s, n = loss_sum_and_count(logits, labels)
    assert n == 2 + 6 and torch.allclose(s / n, tm)
    per_row = [token_mean_loss(logits[i : i + 1], labels[i : i + 1]) for i in range(2)]
    assert torch.allclose(sequence_mean_loss(logits, labels), (per_row[0] + per_row[1]) / 2)
    assert not torch.allclose(sequence_mean_loss(logits, labels), tm)


def test_grad_accumulation_matches_one_big_batch(tok, problems):
    """sft_step over 2 micro-batches gives the same update as one batch of their union."""
    convs = sft.conversations(problems[:8], cot=False)
    models = [new_tiny_model(seed=1)[0] for _ in range(2)]
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in models]
    full = sft_batch(tok, convs)
    l1 = sft.sft_step(models[0], opts[0], [full], clip=None)
    l2 = sft.sft_step(models[1], opts[1], [sft_batch(tok, convs[:3]), sft_batch(tok, convs[3:])], clip=None)
    assert abs(l1 - l2) < 1e-5
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_sequence_average_under_accumulation(tok, problems):
    """average="sequence": micro-batches add up to the whole batch's per-sequence mean, a different objective."""
    convs = sft.conversations(problems[:8], cot=False)
    full = sft_batch(tok, convs)
    model = new_tiny_model(seed=1)[0]
    model.zero_grad()
    want = sequence_mean_loss(model(input_ids=full["input_ids"], attention_mask=full["attention_mask"]).logits, full["labels"])
    want.backward()
    g_want = grads(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the step leaves the weights, we read the gradient
    got = sft.sft_step(model, opt, [sft_batch(tok, convs[:3]), sft_batch(tok, convs[3:])], clip=None, average="sequence")
    assert abs(got - want.item()) < 1e-5 and rel_error(grads(model), g_want) < 1e-5
    token = sft.sft_step(model, opt, [full], clip=None)
    assert abs(token - got) > 1e-4  # the token mean is another number
    with pytest.raises(ValueError):
        sft.sft_step(model, opt, [full], average="row")


def test_train_sft_lowers_the_loss(tok, problems):
    model, _ = new_tiny_model(seed=0)
    losses = sft.train_sft(model, tok, sft.conversations(problems, cot=False), steps=8, batch_size=4, lr=3e-3, warmup=2, grad_accum=2)
    assert len(losses) == 8 and sum(losses[-3:]) < sum(losses[:3]) and not model.training


def test_datasets_formats(problems):
    ds = sft.sft_dataset(problems, fmt="messages")
    assert ds.column_names == ["messages"] and ds[0]["messages"][-1]["role"] == "assistant"
    pc = sft.sft_dataset(problems, fmt="prompt_completion")
    assert pc.column_names == ["prompt", "completion"]
    assert pc[0]["prompt"][-1]["role"] == "user" and pc[0]["completion"][0]["role"] == "assistant"
    with pytest.raises(ValueError):
        sft.sft_dataset(problems, fmt="text")


def test_by_turn_and_format_rate(problems):
    vals = [1.0 if sft.is_dialogue(p) else 0.0 for p in problems]
    assert sft.by_turn(problems, vals) == {"single-turn": 0.0, "second turn": 1.0}
    assert sft.format_rate(["<think></think><answer>a</answer>", "a"]) == 0.5


@pytest.mark.parametrize("fmt,mode,kw", [("messages", "assistant", {"assistant_only_loss": True}),
                                         ("prompt_completion", "last", {})])
def test_our_loss_equals_trl_loss(tok, problems, fmt, mode, kw):
    """Same weights, same batch: our token-mean loss and gradients equal SFTTrainer.compute_loss's."""
    pytest.importorskip("trl")
    from trl import SFTTrainer

    model, _ = new_tiny_model(seed=2)
    trainer = SFTTrainer(model=model, args=sft.sft_config(max_steps=1, per_device_train_batch_size=4, **kw),
                         train_dataset=sft.sft_dataset(problems, fmt=fmt), processing_class=tok)
    batch = sft.trl_collate(trainer, 0, 8)
    ours = sft_batch(tok, sft.conversations(problems[:8], cot=False), mode=mode)
    assert torch.equal(batch["labels"], ours["labels"]) and torch.equal(batch["input_ids"], ours["input_ids"])
    model.zero_grad()
    theirs = sft.trl_loss(trainer, batch)
    theirs.backward()
    g_trl = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    mine = token_mean_loss(model(input_ids=ours["input_ids"], attention_mask=ours["attention_mask"]).logits, ours["labels"])
    mine.backward()
    assert abs(mine.item() - theirs.item()) < 1e-5
    assert rel_error(g_trl, grads(model)) < 1e-5  # the same sums in another order: ~1e-7 relative on any CPU
    # with gradient accumulation the Trainer divides by the tokens of all micro-batches
    n_all = int((ours["labels"][:, 1:] != IGNORE).sum())
    halves = [{k: v[i : i + 4] for k, v in batch.items()} for i in (0, 4)]
    with torch.no_grad():
        acc = sum(sft.trl_loss(trainer, h, num_items_in_batch=n_all) for h in halves)
    assert abs(acc.item() - mine.item()) < 1e-5
