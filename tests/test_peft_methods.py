"""PEFT helpers (utils.sft.peft): aligned logits, measured training memory, decoders that agree with forward."""
import copy
from functools import partial

import torch

from utils import world
from utils.lm.batches import marker_batch
from utils.lm.evaluation import evaluate
from utils.lm.logprobs import mle_loss
from utils.sft import problem_batches
from utils.sft.peft import (
    AlignedLogits,
    generation_consistent,
    greedy_texts,
    heldout_nll,
    make_peft,
    probe_method,
    training_memory,
)


def test_aligned_logits_and_problem_batches(tiny_sft):
    model, tok = tiny_sft
    probs = world.sample_problems("addition", 2, 8, "train")
    batches = problem_batches(tok, probs, batch_size=4, seed=0)
    b0, b2 = batches(0), batches(2)
    assert b0["input_ids"].shape[0] == 4 and set(b0) == {"input_ids", "attention_mask", "labels"}
    assert b2["input_ids"].shape[0] == 4  # second epoch
    pm = make_peft(copy.deepcopy(model), "prompt", n_virtual=5)
    x = b0["input_ids"]
    assert pm(input_ids=x, attention_mask=b0["attention_mask"]).logits.shape[1] == x.shape[1] + 5
    assert AlignedLogits(pm)(input_ids=x, attention_mask=b0["attention_mask"]).logits.shape[1] == x.shape[1]


def test_training_memory_lora_vs_full(tiny_sft):
    model, tok = tiny_sft
    batch = marker_batch(tok, [p.messages() for p in world.sample_problems("addition", 3, 4, "train")])
    full = copy.deepcopy(model)
    before = {n: p.detach().clone() for n, p in full.named_parameters()}
    m_full = training_memory(full, dict(batch))
    assert all(torch.equal(p, before[n]) for n, p in full.named_parameters())  # left unchanged
    lora = make_peft(copy.deepcopy(model), "lora", r=2)
    m_lora = training_memory(AlignedLogits(lora), dict(batch))
    assert m_full.grads == m_full.trainable * 4 and m_full.optimizer == 2 * m_full.grads
    assert m_lora.trainable < 0.05 * m_full.trainable
    assert m_lora.grads + m_lora.optimizer < 0.05 * (m_full.grads + m_full.optimizer)
    assert m_full.activations > 0 and m_lora.activations > 0


def test_prompt_learning_decoder_matches_forward(tiny_sft):
    model, tok = tiny_sft
    probs = world.sample_problems("addition", 3, 2, "test")
    for method in ("prompt", "prefix"):
        pm = make_peft(copy.deepcopy(model), method, n_virtual=4)
        with torch.no_grad():
            for p in pm.parameters():
                if p.requires_grad:
                    p.add_(torch.randn_like(p))
        assert generation_consistent(pm, tok, probs, max_new_tokens=12, backend="course") > 0.99


def test_course_and_generate_backends_agree_for_lora(tiny_sft):
    model, tok = tiny_sft
    probs = world.sample_problems("addition", 2, 2, "test")
    pm = make_peft(copy.deepcopy(model), "lora", r=2)
    assert greedy_texts(pm, tok, probs, 24, backend="course") == greedy_texts(pm, tok, probs, 24, backend="generate")


def test_probe_reports_errors_instead_of_raising(tiny_sft):
    model, tok = tiny_sft
    probs = world.sample_problems("addition", 2, 2, "train")
    row = probe_method(lambda: copy.deepcopy(model), tok, "no-such-method", probs)
    assert row["train_step"] == "failed" and "unknown PEFT method" in row["error"]
    row = probe_method(lambda: copy.deepcopy(model), tok, "ia3", probs)
    assert row["train_step"] == "ok" and row["generation"] > 0.99 and row["course_decoder"] > 0.99


def test_heldout_nll_is_the_token_mean_loss_and_batch_independent(tiny_sft):
    from utils.lm.batches import sft_batch

    model, tok = tiny_sft
    probs = world.sample_problems("countdown", 3, 6, "test")
    batch = sft_batch(tok, [p.messages(cot=True) for p in probs], system=True)
    labels = batch.pop("labels")
    with torch.no_grad():
        want = float(mle_loss(model(**batch).logits, labels))  # mean over every assistant token of the batch
    one, three = heldout_nll(model, tok, probs, batch_size=64), heldout_nll(model, tok, probs, batch_size=2)
    assert abs(one - want) <= 1e-5 * want and abs(three - one) <= 1e-5 * one  # fp32 sums in another order
    prompt = make_peft(copy.deepcopy(model), "prompt", n_virtual=4)
    assert heldout_nll(prompt, tok, probs) > 0  # prompt learning: scored through AlignedLogits


def test_the_evaluator_scores_peft_decoders(tiny_sft):
    model, tok = tiny_sft
    probs = world.sample_problems("addition", 2, 8, "test")
    texts = greedy_texts(model, tok, probs, 48)
    res = evaluate(model, tok, probs, max_new_tokens=48, progress=False, decode=partial(greedy_texts, model, tok))
    assert res.greedy_texts == texts
    assert res.accuracy == sum(world.score(p, t) for p, t in zip(probs, texts)) / len(probs)
    assert res.greedy.tolist() == evaluate(model, tok, probs, max_new_tokens=48, progress=False).greedy.tolist()
    pm = make_peft(copy.deepcopy(model), "prompt", n_virtual=4)  # prompt learning: sample() cannot decode it
    pres = evaluate(pm, tok, probs, max_new_tokens=24, progress=False, decode=partial(greedy_texts, pm, tok))
    assert pres.greedy_texts == greedy_texts(pm, tok, probs, 24) and 0 <= pres.accuracy <= 1


def test_heldout_nll_of_given_completions(tiny_sft):
    from utils.sft.data import conversation

    model, tok = tiny_sft
    probs = world.sample_problems("countdown", 3, 4, "test")
    own = greedy_texts(model, tok, probs, 48)
    batch = sft_batch_of(tok, [conversation(p, c) for p, c in zip(probs, own)])
    labels = batch.pop("labels")
    with torch.no_grad():
        want = float(mle_loss(model(**batch).logits, labels))
    got = heldout_nll(model, tok, probs, completions=own)
    assert abs(got - want) <= 1e-5 * want
    assert got < heldout_nll(model, tok, probs, completions=["<think>9*9=81</think><answer>9*9</answer>"] * 4)
    try:
        heldout_nll(model, tok, probs, completions=own[:2])
    except ValueError:
        pass
    else:
        raise AssertionError("a completion per problem is required")


def sft_batch_of(tok, chats):
    from utils.lm.batches import sft_batch

    return sft_batch(tok, chats, system=True)
