"""Checkpoint/resume: an interrupted training run, resumed, ends exactly where an uninterrupted one does."""
import copy

import pytest
import torch

from utils import sft
from utils.checkpoint import Checkpoint, weights_checksum
from utils.lm import train_lm
from utils.lm.batches import marker_batch
from utils.runtime import get_profile
from utils.sft import train as sft_train
from utils.world import sample_problems


class Interrupt(Exception):
    pass


def _batches(tok, problems, stop_at=None):
    def batches(step):
        if stop_at is not None and step == stop_at:
            raise Interrupt  # a Colab disconnect in the middle of step `stop_at`
        chunk = problems[(step * 4) % len(problems):][:4]
        return marker_batch(tok, [p.messages() for p in chunk])
    return batches


def test_train_lm_resumes_exactly_after_an_interruption(tiny_sft, tmp_path):
    model, tok = tiny_sft
    problems = sample_problems("addition", 3, 40, "train")
    ref = copy.deepcopy(model)
    ref_losses = train_lm(ref, _batches(tok, problems), steps=10, lr=1e-3, warmup=2)

    path = tmp_path / "run.pt"
    first = copy.deepcopy(model)
    with pytest.raises(Interrupt):
        train_lm(first, _batches(tok, problems, stop_at=7), steps=10, lr=1e-3, warmup=2, checkpoint=path, save_every=3)
    assert torch.load(path, weights_only=False)["step"] == 6           # saved after steps 3 and 6
    resumed = copy.deepcopy(model)                                      # a fresh process: the starting weights again
    losses = train_lm(resumed, _batches(tok, problems), steps=10, lr=1e-3, warmup=2, checkpoint=path, save_every=3)
    assert losses == pytest.approx(ref_losses, abs=1e-6) and len(losses) == 10
    for a, b in zip(ref.parameters(), resumed.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    # finished: running the cell again returns at once with the trained weights
    again = copy.deepcopy(model)
    assert train_lm(again, _batches(tok, problems, stop_at=0), steps=10, lr=1e-3, warmup=2, checkpoint=path) == losses
    assert weights_checksum(again) == weights_checksum(resumed)


def test_a_checkpoint_of_another_run_is_ignored(tiny_sft, tmp_path, capsys):
    model, tok = tiny_sft
    problems = sample_problems("addition", 3, 40, "train")
    path = tmp_path / "run.pt"
    train_lm(copy.deepcopy(model), _batches(tok, problems), steps=3, lr=1e-3, warmup=1, checkpoint=path)
    other = copy.deepcopy(model)
    losses = train_lm(other, _batches(tok, problems), steps=3, lr=5e-4, warmup=1, checkpoint=path)  # another lr
    assert len(losses) == 3 and "another run" in capsys.readouterr().out
    path.write_bytes(b"not a checkpoint")
    assert len(train_lm(copy.deepcopy(model), _batches(tok, problems), steps=2, lr=1e-3, warmup=1, checkpoint=path)) == 2


def test_train_sft_resumes(tiny_sft, tmp_path, monkeypatch):
    model, tok = tiny_sft
    convs = sft.conversations(sample_problems("strings", 1, 24, "train"), cot=False)
    kw = dict(steps=6, batch_size=4, lr=1e-3, warmup=1)
    ref = copy.deepcopy(model)
    ref_losses = sft.train_sft(ref, tok, convs, **kw)
    path = tmp_path / "sft.pt"
    real_step, calls = sft.sft_step, []

    def flaky_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise Interrupt
        return real_step(*args, **kwargs)
    monkeypatch.setattr(sft_train, "sft_step", flaky_step)
    with pytest.raises(Interrupt):
        sft.train_sft(copy.deepcopy(model), tok, convs, checkpoint=Checkpoint(path, every=2), **kw)
    monkeypatch.setattr(sft_train, "sft_step", real_step)
    resumed = copy.deepcopy(model)
    losses = sft.train_sft(resumed, tok, convs, checkpoint=Checkpoint(path, every=2), **kw)
    assert losses == pytest.approx(ref_losses, abs=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ref.parameters(), resumed.parameters()))


def test_profile_checkpoint_locations(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_CHECKPOINTS", raising=False)
    assert get_profile("cpu").checkpoint("x") is None and get_profile("smoke").checkpoint("x") is None
    monkeypatch.setenv("COURSE_CHECKPOINTS", str(tmp_path))
    assert get_profile("cpu").checkpoint("run") == tmp_path / "run.pt"
    with pytest.raises(ValueError):
        Checkpoint(tmp_path / "a.pt", every=0)


def test_only_trainable_parameters_are_saved_and_resume_stays_exact(tiny_sft, tmp_path):
    model, tok = tiny_sft
    problems = sample_problems("addition", 3, 40, "train")

    def partly_frozen():
        m = copy.deepcopy(model)
        m.requires_grad_(False)
        m.model.layers[-1].requires_grad_(True)       # train the last block only (a PEFT-like run)
        return m
    ref = partly_frozen()
    ref_losses = train_lm(ref, _batches(tok, problems), steps=6, lr=1e-3, warmup=1)
    path = tmp_path / "part.pt"
    with pytest.raises(Interrupt):
        train_lm(partly_frozen(), _batches(tok, problems, stop_at=5), steps=6, lr=1e-3, warmup=1, checkpoint=path, save_every=2)
    saved = torch.load(path, weights_only=False)["model"]
    assert saved and all(k.startswith("model.layers.3.") for k in saved)
    resumed = partly_frozen()
    assert train_lm(resumed, _batches(tok, problems), steps=6, lr=1e-3, warmup=1, checkpoint=path, save_every=2) == pytest.approx(ref_losses, abs=1e-6)
    assert weights_checksum(resumed) == weights_checksum(ref)


def test_a_checkpoint_on_other_data_is_not_resumed(tiny_sft, tmp_path, capsys):
    # same model, steps and learning rate, other training data: the finished run must not be returned as is
    from utils.sft import fine_tune

    model, tok = tiny_sft
    path = tmp_path / "sft.pt"
    first = copy.deepcopy(model)
    fine_tune(first, tok, sft.conversations(sample_problems("addition", 2, 16, "train", seed=0), cot=True), 4, 4, checkpoint=path)
    other = copy.deepcopy(model)
    fine_tune(other, tok, sft.conversations(sample_problems("addition", 2, 16, "train", seed=1), cot=True), 4, 4, checkpoint=path)
    assert "belongs to another run" in capsys.readouterr().out
    assert weights_checksum(other) != weights_checksum(first)
    again = copy.deepcopy(model)                 # the same data again: resumed (finished), identical weights
    fine_tune(again, tok, sft.conversations(sample_problems("addition", 2, 16, "train", seed=1), cot=True), 4, 4, checkpoint=path)
    assert "resumed from" in capsys.readouterr().out and weights_checksum(again) == weights_checksum(other)


def test_train_sft_checkpoint_on_other_conversations_is_not_resumed(tiny_sft, tmp_path, capsys):
    model, tok = tiny_sft
    path = tmp_path / "train_sft.pt"
    a = sft.conversations(sample_problems("addition", 2, 16, "train", seed=0), cot=False)
    b = sft.conversations(sample_problems("addition", 2, 16, "train", seed=1), cot=False)   # as many conversations, others
    sft.train_sft(copy.deepcopy(model), tok, a, steps=3, batch_size=4, warmup=1, checkpoint=path)
    sft.train_sft(copy.deepcopy(model), tok, b, steps=3, batch_size=4, warmup=1, checkpoint=path)
    assert "belongs to another run" in capsys.readouterr().out
