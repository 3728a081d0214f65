"""The tiny tokenizer and its chat template."""
from utils import world
from utils.lm.tokenizer import CHARS, TAGS, build_tokenizer


def test_round_trip_and_single_token_tags():
    tok = build_tokenizer()
    text = "use 3 5 7 to make 26<think>7*3=21,21+5=26</think><answer>(7*3)+5</answer>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert len(ids) == len(text) - sum(len(t) for t in TAGS) + 4
    assert tok.decode(ids, skip_special_tokens=True) == text  # tags survive skip_special_tokens
    assert tok(CHARS, add_special_tokens=False)["input_ids"] == list(range(len(tok) - len(CHARS), len(tok)))
    assert tok("é", add_special_tokens=False)["input_ids"] == [tok.unk_token_id]


def test_deterministic_vocabulary():
    assert build_tokenizer().get_vocab() == build_tokenizer().get_vocab()


def test_chat_template_and_assistant_mask():
    tok = build_tokenizer()
    from utils.world import strings

    p = strings.make_problem("reverse", "cat")
    msgs = p.messages()
    text = tok.apply_chat_template(msgs, tokenize=False)
    assert text == f"<|user|>{p.prompt}<|end|><|assistant|>{p.completion()}<|end|>"
    out = tok.apply_chat_template(msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    kept = tok.decode([i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m])
    assert kept == p.completion() + "<|end|>"
    prompt = tok.apply_chat_template(msgs[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|assistant|>") and text.startswith(prompt)


def test_multi_turn_mask_covers_every_assistant_turn():
    from utils.lm.batches import marker_batch
    from utils.lm.logprobs import IGNORE

    tok = build_tokenizer()
    from utils.world import strings

    p = strings.make_problem("sort", "tac", history=(("reverse cat", "tac"),))
    batch = marker_batch(tok, [p.messages()])
    kept = tok.decode([int(t) for t in batch["labels"][0] if t != IGNORE])
    assert kept == world.format_completion("", "tac") + "<|end|>" + p.completion() + "<|end|>"
