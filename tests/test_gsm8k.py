"""GSM8K support, tested offline with a fake loader (the real download needs COURSE_ONLINE=1)."""
import pytest

from utils import world
from utils.world import gsm8k

ROWS = [
    {"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
                 "How many clips did Natalia sell altogether in April and May?",
     "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether "
               "in April and May.\n#### 72"},
    {"question": "A shop sells 1234 apples at $1 each. How many dollars?", "answer": "1234*1=<<1234*1=1234>>1234\n#### 1,234"},
    {"question": "What is 7.5 - 10?", "answer": "7.5-10=<<7.5-10=-2.5>>-2.5\n#### -2.5"},
]


def fake_loader(name, config, split):
    assert (name, config) == gsm8k.DATASET
    return ROWS if split == "test" else ROWS[:1]


def test_offline_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("COURSE_ONLINE", raising=False)
    with pytest.raises(RuntimeError, match="COURSE_ONLINE=1"):
        gsm8k.load("test", loader=fake_loader)
    with pytest.raises(ValueError, match="splits"):
        gsm8k.load("validation", online=True, loader=fake_loader)


def test_rows_become_world_problems(monkeypatch):
    monkeypatch.setenv("COURSE_ONLINE", "1")
    probs = gsm8k.load("test", loader=fake_loader)
    p = probs[0]
    assert (p.family, p.answer, p.split) == ("gsm8k", "72", "test") and p.prompt.startswith("Natalia")
    assert "<<" not in p.steps[0] and "24 clips in May." in p.steps[0]
    assert p.completion() == f"<think>{p.steps[0]}</think><answer>72</answer>"
    assert probs[1].answer == "1234" and probs[2].answer == "-2.5"
    assert gsm8k.load("train", loader=fake_loader)[0].split == "train"


def test_subsets_are_deterministic_and_bounded():
    a = gsm8k.load("test", n=2, seed=1, online=True, loader=fake_loader)
    assert a == gsm8k.load("test", n=2, seed=1, online=True, loader=fake_loader) and len(a) == 2
    with pytest.raises(ValueError, match="has 3"):
        gsm8k.load("test", n=4, online=True, loader=fake_loader)


def test_download_failures_and_bad_rows_say_what_happened():
    def broken(*a, **k):
        raise ConnectionError("no route to host")
    with pytest.raises(RuntimeError, match="could not load GSM8K.*no route"):
        gsm8k.load("test", online=True, loader=broken)
    with pytest.raises(ValueError, match="no '####"):
        gsm8k.from_row({"question": "q", "answer": "no final line"}, "test-0")
    with pytest.raises(ValueError, match="not a number"):
        gsm8k.from_row({"question": "q", "answer": "x\n#### many"}, "test-0")


def test_numeric_verifier_through_world_score():
    p, big, neg = gsm8k.load("test", online=True, loader=fake_loader)
    right = ["<answer>72</answer>", "<answer>72.0</answer>", "<answer>$72</answer>", "<answer>She sold 72 clips</answer>",
             "<think>48+24=72</think><answer> 72 </answer>"]
    wrong = ["<answer>71</answer>", "<answer>seventy-two</answer>", "<answer></answer>", "72", "<answer>72", None, 72, ""]
    assert all(world.score(p, t) == 1.0 for t in right)
    assert all(world.score(p, t) == 0.0 for t in wrong)
    assert world.score(big, "<answer>1,234</answer>") == 1.0 and world.score(big, "<answer>1234</answer>") == 1.0
    assert world.score(neg, "<answer>-2.5</answer>") == 1.0 and world.score(neg, "<answer>2.5</answer>") == 0.0
    assert gsm8k.parse_number("$1,234.50 total") == 1234.5 and gsm8k.parse_number("none") is None


def test_gsm8k_is_not_a_generator():
    with pytest.raises(ValueError, match="utils.world.gsm8k.load"):
        world.sample_problems("gsm8k", 0, 3)
