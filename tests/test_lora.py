"""LoRA from scratch (utils.lm.lora): exact at initialisation, equal to PEFT's LoRA, merge == unmerged forward."""
import copy

import pytest
import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from utils.lm.lora import (
    LoRALinear,
    copy_lora_to_peft,
    inject_lora,
    linear_shapes,
    lora_layers,
    lora_param_count,
    lora_scale,
    merge_lora,
    remove_lora,
    unmerge_lora,
)
from utils.lm.models import count_parameters

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def small_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=4, max_position_embeddings=64, tie_word_embeddings=True)
    return LlamaForCausalLM(cfg).eval()


def randomize_b(model: nn.Module, seed: int = 1, std: float = 0.05) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in lora_layers(model).values():
            m.lora_B.copy_(torch.randn(m.lora_B.shape, generator=g) * std)


@pytest.fixture
def ids():
    return torch.randint(0, 50, (3, 11), generator=torch.Generator().manual_seed(0))


def test_layer_shapes_and_zero_init():
    base = nn.Linear(8, 5)
    layer = LoRALinear(base, r=3, alpha=6)
    assert layer.lora_A.shape == (3, 8) and layer.lora_B.shape == (5, 3) and layer.scaling == 2.0
    assert not base.weight.requires_grad and layer.lora_A.requires_grad and layer.lora_B.requires_grad
    x = torch.randn(2, 4, 8)
    assert torch.equal(layer(x), base(x))  # B = 0: exactly the base layer
    assert layer.delta_weight().shape == base.weight.shape


def test_layer_forward_formula():
    base = nn.Linear(8, 5)
    layer = LoRALinear(base, r=2, alpha=4)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(7, 8)
    want = x @ base.weight.T + base.bias + (4 / 2) * x @ layer.lora_A.T @ layer.lora_B.T
    assert torch.allclose(layer(x), want, atol=1e-6)


def test_zero_init_model_is_identical(ids):
    base = small_llama()
    model = copy.deepcopy(base)
    names = inject_lora(model, TARGETS, r=4, alpha=8)
    assert len(names) == 2 * 7
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, base(input_ids=ids).logits)


def test_inject_freezes_and_counts():
    model = small_llama()
    inject_lora(model, ["q_proj", "v_proj"], r=2, alpha=4)
    trainable = count_parameters(model, trainable_only=True)
    shapes = linear_shapes(model, ["q_proj", "v_proj"])
    assert trainable == lora_param_count(shapes, 2) == 2 * 2 * 2 * (32 + 32)
    assert all(("lora_" in n) == p.requires_grad for n, p in model.named_parameters())
    with pytest.raises(ValueError, match="no nn.Linear matches"):
        inject_lora(small_llama(), ["qproj"], r=2, alpha=4)


def test_agrees_with_peft(ids):
    from peft import LoraConfig, get_peft_model

    base = small_llama()
    ours = copy.deepcopy(base)
    inject_lora(ours, TARGETS, r=4, alpha=8)
    randomize_b(ours)
    theirs = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, lora_dropout=0.0))
    assert copy_lora_to_peft(ours, theirs) == 14
    assert count_parameters(ours, trainable_only=True) == theirs.get_nb_trainable_parameters()[0]
    with torch.no_grad():
        a, b = ours(input_ids=ids).logits, theirs(input_ids=ids).logits
        assert not torch.allclose(a, base(input_ids=ids).logits, atol=1e-3)  # the adapter does something
        assert torch.allclose(a, b, atol=1e-5)
        merged = theirs.merge_and_unload()
        merge_lora(ours)
        assert torch.allclose(ours(input_ids=ids).logits, merged(input_ids=ids).logits, atol=1e-5)


def test_merge_equals_unmerged_and_unmerge_restores(ids):
    model = small_llama()
    w0 = model.model.layers[0].self_attn.q_proj.weight.detach().clone()
    inject_lora(model, TARGETS, r=3, alpha=6)
    randomize_b(model)
    with torch.no_grad():
        before = model(input_ids=ids).logits
        assert merge_lora(model) == 14
        merged = model(input_ids=ids).logits
        assert torch.allclose(before, merged, atol=1e-5)
        merge_lora(model)  # idempotent
        assert torch.allclose(model(input_ids=ids).logits, merged, atol=1e-6)
        unmerge_lora(model)
        assert torch.allclose(model.model.layers[0].self_attn.q_proj.base.weight, w0, atol=1e-6)
        assert torch.allclose(model(input_ids=ids).logits, before, atol=1e-5)
        remove_lora(model)
        assert not lora_layers(model)
        assert torch.allclose(model(input_ids=ids).logits, before, atol=1e-5)


def test_lora_trains_only_adapters(ids):
    model = small_llama()
    frozen = {n: p.detach().clone() for n, p in model.named_parameters()}
    inject_lora(model, TARGETS, r=2, alpha=4)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    for n, p in model.named_parameters():
        if "lora_" not in n:
            key = n.replace(".base.", ".")
            assert torch.equal(p, frozen[key]), f"{n} changed"
    assert any(m.lora_B.abs().sum() > 0 for m in lora_layers(model).values())


def test_rslora_scale():
    assert lora_scale(16, 4) == 4.0 and lora_scale(16, 4, rslora=True) == 8.0
    assert [lora_scale(8, r, rslora=True) for r in (1, 4, 16)] == [8.0, 4.0, 2.0]
    assert LoRALinear(nn.Linear(6, 5), r=9, alpha=6, rslora=True).scaling == 2.0
    with pytest.raises(ValueError):
        lora_scale(8, 0)


def test_rslora_agrees_with_peft(ids):
    from peft import LoraConfig, get_peft_model

    base = small_llama()
    ours = copy.deepcopy(base)
    inject_lora(ours, TARGETS, r=4, alpha=8, rslora=True)
    randomize_b(ours)
    assert all(m.scaling == 4.0 for m in lora_layers(ours).values())
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, lora_dropout=0.0, use_rslora=True)
    theirs = get_peft_model(copy.deepcopy(base), cfg)
    assert copy_lora_to_peft(ours, theirs) == 14  # raises if PEFT's scaling differed from ours
    with torch.no_grad():
        assert torch.allclose(ours(input_ids=ids).logits, theirs(input_ids=ids).logits, atol=1e-5)
    plain = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, lora_dropout=0.0))
    with pytest.raises(ValueError, match="scaling differs"):
        copy_lora_to_peft(ours, plain)
