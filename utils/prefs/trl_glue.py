"""TRL 1.16's preference trainers on the course's pairs, and our losses on *their* batches (chapter 09's checks).

Each ``*_check`` builds the trainer on a few pairs, collates one batch with the trainer's own collator, moves the
policy off the reference (else every loss sits at its trivial value), and returns ``(theirs, ours)``: the trainer's
``compute_loss`` and :mod:`utils.prefs.losses` on log-probs we gather ourselves from the same token ids.

* :func:`dpo_check` - ``trl.DPOTrainer`` (``loss_type="sigmoid"``) vs :func:`dpo_loss`; also the implicit rewards.
* :func:`kto_check` - ``trl.KTOTrainer`` vs :func:`kto_loss` (its KL reference point from the collator's mismatched pairs).
* :func:`orpo_check` - ``trl.experimental.orpo.ORPOTrainer`` vs :func:`orpo_loss` (TRL's NLL runs over prompt *and*
  response tokens; Hong et al.'s over the response: we pass TRL's to compare the formula).
* :func:`simpo_check` - ``trl.experimental.cpo.CPOTrainer(loss_type="simpo", cpo_alpha=0)`` vs :func:`simpo_loss`.
"""
from __future__ import annotations

import tempfile
import warnings
from typing import Any, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.logprobs import IGNORE, gather_logprobs
from ..runtime import trainer_precision
from ..world.preferences import PreferencePair
from .losses import dpo_loss, kto_loss, kto_reference_point, orpo_loss, simpo_loss


def conversational_rows(pairs: Sequence[PreferencePair]) -> list[dict[str, Any]]:
    """TRL's conversational preference rows: ``prompt`` (a user turn), ``chosen`` / ``rejected`` (assistant turns)."""
    return [{"prompt": [{"role": "user", "content": p.problem.prompt}], "chosen": [{"role": "assistant", "content": p.chosen}],
             "rejected": [{"role": "assistant", "content": p.rejected}]} for p in pairs]


def _common(**kw: Any) -> dict[str, Any]:
    return {"output_dir": tempfile.mkdtemp(), **trainer_precision("cpu", torch.float32), "report_to": "none",
            "save_strategy": "no", "gradient_checkpointing": False, "per_device_train_batch_size": 4, **kw}


def perturb(model: PreTrainedModel, scale: float = 0.02, seed: int = 1) -> None:
    """Add ``scale`` × Gaussian noise to every weight (in place): a policy that differs from its reference."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g).to(p.device, p.dtype))


def _seq_logps(model: PreTrainedModel, ids: torch.Tensor, att: torch.Tensor, cmask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``([B] summed log-probs, [B] counts)`` of the tokens where ``cmask`` (aligned with ``ids``) is 1."""
    logits = model(input_ids=ids, attention_mask=att).logits[:, :-1]
    m = cmask[:, 1:].float()
    return (gather_logprobs(torch.log_softmax(logits.float(), -1), ids[:, 1:]) * m).sum(-1), m.sum(-1)


def _their_loss(trainer_cls: Any, cfg: Any, model: PreTrainedModel, tok: PreTrainedTokenizerBase, rows: list[dict[str, Any]],
                **trainer_kw: Any) -> tuple[Any, dict[str, Any], torch.Tensor]:
    """``(trainer, batch, loss)``: the trainer on ``rows``, its collator's first batch of 4, its ``compute_loss`` on
    that batch after :func:`perturb` moved the policy off the reference."""
    from datasets import Dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr = trainer_cls(model=model, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=tok, **trainer_kw)
    batch = tr.data_collator([tr.train_dataset[i] for i in range(4)])
    perturb(tr.model)
    return tr, batch, tr.compute_loss(tr.model, dict(batch)).detach()


def dpo_check(model: PreTrainedModel, ref: PreTrainedModel, tok: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair],
              beta: float = 0.1) -> dict[str, torch.Tensor]:
    """``theirs`` / ``ours`` DPO losses on one batch of 4 pairs, and TRL's logged vs our mean implicit rewards."""
    from trl import DPOConfig, DPOTrainer

    cfg = DPOConfig(**_common(beta=beta, max_length=256))
    tr, batch, theirs = _their_loss(DPOTrainer, cfg, model, tok, conversational_rows(pairs), ref_model=ref)  # [chosen; rejected] rows
    with torch.no_grad():
        args = (batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
        (w, l), (rw, rl) = _seq_logps(tr.model, *args)[0].chunk(2), _seq_logps(ref, *args)[0].chunk(2)
    logged = tr._metrics["train" if tr.model.training else "eval"]  # what DPOTrainer logs as rewards/chosen, /rejected
    return {"theirs": theirs, "ours": dpo_loss(w, l, rw, rl, beta).mean(),
            "theirs_rewards": torch.tensor([logged["rewards/chosen"][-1], logged["rewards/rejected"][-1]]),
            "ours_rewards": torch.stack([(beta * (w - rw)).mean(), (beta * (l - rl)).mean()])}


def kto_check(model: PreTrainedModel, ref: PreTrainedModel, tok: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair],
              beta: float = 0.1) -> dict[str, torch.Tensor]:
    """``theirs`` / ``ours`` KTO losses on one batch: each pair gives a desirable (chosen) and an undesirable
    (rejected) example, unpaired; 4 examples, 2 of each."""
    from trl import KTOConfig, KTOTrainer

    rows = []
    for r in conversational_rows(pairs):
        rows += [{"prompt": r["prompt"], "completion": r["chosen"], "label": True},
                 {"prompt": r["prompt"], "completion": r["rejected"], "label": False}]
    cfg = KTOConfig(**_common(beta=beta, max_length=256))
    tr, batch, theirs = _their_loss(KTOTrainer, cfg, model, tok, rows, ref_model=ref)
    with torch.no_grad():
        main = (batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
        mism = (batch["KL_input_ids"], batch["KL_attention_mask"], batch["KL_completion_mask"])
        ratios = _seq_logps(tr.model, *main)[0] - _seq_logps(ref, *main)[0]
        z = kto_reference_point(_seq_logps(tr.model, *mism)[0], _seq_logps(ref, *mism)[0])
    return {"theirs": theirs, "ours": kto_loss(ratios, torch.as_tensor(batch["label"]).bool(), z, beta).mean(), "kl": z}


def _concatenated(tr: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    c = tr.concatenated_inputs(batch, is_encoder_decoder=False, padding_value=tr.padding_value if hasattr(tr, "padding_value") else tr.pad_token_id)
    ids, att, labels = c["concatenated_input_ids"], c["concatenated_attention_mask"], c["concatenated_labels"]
    return ids, att, (labels != IGNORE).long()


def orpo_check(model: PreTrainedModel, tok: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair], lam: float = 0.1
               ) -> dict[str, torch.Tensor]:
    """``theirs`` / ``ours`` ORPO losses on one batch of 4 pairs (no reference model)."""
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    cfg = ORPOConfig(**_common(beta=lam, max_length=256, max_completion_length=128, remove_unused_columns=False))
    tr, batch, theirs = _their_loss(ORPOTrainer, cfg, model, tok, conversational_rows(pairs))
    ids, att, cmask = _concatenated(tr, batch)
    with torch.no_grad():
        lp, n = _seq_logps(tr.model, ids, att, cmask)
        full_lp, full_n = _seq_logps(tr.model, ids, att, att)  # TRL's NLL: every attended token of the chosen rows
    (w, l), (nw, nl) = lp.chunk(2), n.chunk(2)
    nll = -full_lp.chunk(2)[0].sum() / full_n.chunk(2)[0].sum()
    return {"theirs": theirs, "ours": orpo_loss(nll.expand(w.shape), w / nw, l / nl, lam).mean()}


def simpo_check(model: PreTrainedModel, tok: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair], beta: float = 2.0,
                gamma: float = 1.0) -> dict[str, torch.Tensor]:
    """``theirs`` / ``ours`` SimPO losses on one batch of 4 pairs: TRL's CPO trainer with ``loss_type="simpo"`` and
    ``cpo_alpha=0`` (no NLL term); TRL's ``simpo_gamma`` is the margin ``γ`` in the same units as ours."""
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    cfg = CPOConfig(**_common(beta=beta, loss_type="simpo", simpo_gamma=gamma, cpo_alpha=0.0, max_length=256,
                              max_completion_length=128, remove_unused_columns=False))
    tr, batch, theirs = _their_loss(CPOTrainer, cfg, model, tok, conversational_rows(pairs))
    ids, att, cmask = _concatenated(tr, batch)
    with torch.no_grad():
        lp, n = _seq_logps(tr.model, ids, att, cmask)
    (w, l), (nw, nl) = lp.chunk(2), n.chunk(2)
    return {"theirs": theirs, "ours": simpo_loss(w / nw, l / nl, beta, gamma).mean()}
