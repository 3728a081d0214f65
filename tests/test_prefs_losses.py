"""Preference losses against their closed forms (chapter 09 checks them against TRL's trainers)."""
import math

import torch

from utils.prefs import dpo_loss, ipo_loss, listwise_dpo_loss, orpo_loss, simpo_loss
from utils.prefs.losses import log_odds
from utils.reward_models import bradley_terry_loss
from utils.reward_models.model import implicit_reward

torch.manual_seed(0)
W, L, RW, RL = (-torch.rand(6) * 20 for _ in range(4))


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_dpo_is_bradley_terry_on_implicit_rewards():
    r_w, r_l = implicit_reward(W, RW, 0.1), implicit_reward(L, RL, 0.1)
    assert torch.allclose(dpo_loss(W, L, RW, RL, 0.1).mean(), bradley_terry_loss(r_w, r_l), rtol=1e-6)
    i = 2
    want = -math.log(sig(0.1 * ((W[i] - RW[i]) - (L[i] - RL[i])).item()))
    assert abs(dpo_loss(W, L, RW, RL, 0.1)[i].item() - want) < 1e-5
    # at the reference, the loss is log 2 whatever the data
    assert torch.allclose(dpo_loss(W, L, W, L, 0.5), torch.full((6,), math.log(2)))


def test_ipo_simpo_orpo_closed_forms():
    n_w, n_l = torch.full((6,), 4.0), torch.full((6,), 8.0)
    want = ((W - RW) / 4 - (L - RL) / 8 - 1 / 0.2) ** 2
    assert torch.allclose(ipo_loss(W, L, RW, RL, n_w, n_l, beta=0.1), want)
    mw, ml = W / 10, L / 10
    assert torch.allclose(simpo_loss(mw, ml, 2.0, 0.5), -torch.nn.functional.logsigmoid(2 * (mw - ml) - 0.5))
    p = 0.3
    assert abs(log_odds(torch.tensor(math.log(p))).item() - math.log(p / (1 - p))) < 1e-6
    o = orpo_loss(torch.tensor([1.0]), torch.tensor([math.log(0.3)]), torch.tensor([math.log(0.1)]), lam=0.5)
    want = 1.0 - 0.5 * math.log(sig(math.log(0.3 / 0.7) - math.log(0.1 / 0.9)))
    assert abs(o.item() - want) < 1e-6
    assert torch.isfinite(log_odds(torch.tensor([0.0, -1e-9, -50.0]))).all()


def test_listwise_reduces_to_dpo_for_two():
    logps, ref = torch.stack([W, L], 1), torch.stack([RW, RL], 1)
    assert abs(listwise_dpo_loss(logps, ref, 0.1).item() - dpo_loss(W, L, RW, RL, 0.1).mean().item()) < 1e-6


def test_dpo_loss_equals_trl_dpotrainer():
    """Same weights, same batch: our DPO loss on summed completion log-probs equals DPOTrainer.compute_loss."""
    import tempfile

    import pytest
    pytest.importorskip("trl")
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from utils.lm import load_model
    from utils.lm.logprobs import gather_logprobs
    from utils.numerics import rel_error
    from utils.runtime import trainer_precision
    from utils.world import sample_problems
    from utils.world.preferences import preference_pairs

    model, tok = load_model("tiny-sft")
    ref, _ = load_model("tiny-sft")
    pairs = preference_pairs(sample_problems("countdown", 3, 4, split="train"), 2, tau=0.05)
    rows = [{"prompt": [{"role": "user", "content": p.problem.prompt}], "chosen": [{"role": "assistant", "content": p.chosen}],
             "rejected": [{"role": "assistant", "content": p.rejected}]} for p in pairs]
    cfg = DPOConfig(output_dir=tempfile.mkdtemp(), **trainer_precision("cpu", torch.float32), report_to="none",
                    save_strategy="no", beta=0.1, max_length=256, per_device_train_batch_size=4, gradient_checkpointing=False)
    trainer = DPOTrainer(model=model, ref_model=ref, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=tok)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])  # [chosen; rejected] rows
    torch.manual_seed(1)
    with torch.no_grad():  # move the policy off the reference, else both losses are log 2
        for p in trainer.model.parameters():
            p.add_(0.02 * torch.randn_like(p))

    def seq_logps(m):
        ids, cm = batch["input_ids"], batch["completion_mask"]
        logits = m(input_ids=ids, attention_mask=batch["attention_mask"]).logits[:, :-1]
        return (gather_logprobs(torch.log_softmax(logits.float(), -1), ids[:, 1:]) * cm[:, 1:]).sum(-1)

    theirs = trainer.compute_loss(trainer.model, dict(batch))
    with torch.no_grad():
        (w, l), (rw, rl) = seq_logps(trainer.model).chunk(2), seq_logps(ref).chunk(2)
    ours = dpo_loss(w, l, rw, rl, beta=0.1).mean()
    assert rel_error(theirs.detach(), ours) < 1e-5  # the same fp32 sums in another order: ~1e-7 relative
    assert abs(ours.item() - math.log(2)) > 1e-3      # and the check is not the trivial log 2 of policy = reference
