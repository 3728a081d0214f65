"""The tiny model's character-level tokenizer and chat template.

Every printable character of the world is one token; the chat markers and the four format tags are
single special tokens, so ``<think>`` costs one position, not seven. The chat template wraps assistant
turns in ``{% generation %}`` so TRL's ``assistant_only_loss`` and our own masking agree::

    <|user|>use 3 5 7 to make 26<|end|><|assistant|><think>7*3=21,21+5=26</think><answer>(7*3)+5</answer><|end|>
"""
from __future__ import annotations

import string

from tokenizers import AddedToken, Tokenizer, decoders, models
from transformers import PreTrainedTokenizerFast

PAD, UNK, BOS = "<|pad|>", "<|unk|>", "<|bos|>"
SYSTEM, USER, ASSISTANT, END = "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"
TAGS = ("<think>", "</think>", "<answer>", "</answer>")
SPECIALS = (PAD, UNK, BOS, SYSTEM, USER, ASSISTANT, END) + TAGS
CHARS = string.digits + string.ascii_lowercase + string.ascii_uppercase + " +-*/=()<>,.:;?!'\"_#%&[]{}|\\^~@$`\n"

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}<|system|>{{ message['content'] }}<|end|>"
    "{%- elif message['role'] == 'user' -%}<|user|>{{ message['content'] }}<|end|>"
    "{%- elif message['role'] == 'assistant' -%}<|assistant|>{% generation %}{{ message['content'] }}<|end|>{% endgeneration %}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}"
)


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Build the character-level tokenizer (deterministic: same vocabulary ids every time).

    Ids: specials first (``<|pad|>`` = 0), then :data:`CHARS` in order. Unknown characters map to
    ``<|unk|>``. Decoding concatenates characters (no spaces inserted).
    """
    vocab = {tok: i for i, tok in enumerate(SPECIALS + tuple(CHARS))}
    # A BPE model with no merges splits text into single characters.
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK, fuse_unk=False))
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([t for t in SPECIALS if t not in TAGS])
    # the format tags are ordinary (non-special) added tokens: decode(skip_special_tokens=True) keeps them
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAGS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=END,
        additional_special_tokens=[SYSTEM, USER, ASSISTANT],
        padding_side="left",
        model_max_length=256,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast
