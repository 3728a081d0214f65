"""Chapter 04's exercises: the reference solutions pass their graders, typical wrong answers and the stub fail."""
from utils.exercises import grade
from utils.exercises.solutions import ch04


def test_chapter_04_exercises():
    assert grade("04.1", ch04.lora_forward, verbose=False)
    assert grade("04.2", ch04.lora_trainable_params, verbose=False)
    assert grade("04.3", ch04.merge_lora_weight, verbose=False)
    # wrong answers: no alpha/r scaling; scale alpha instead of alpha/r; bias forgotten
    assert not grade("04.1", lambda x, W, b, A, B, a: x @ W.T + (b if b is not None else 0) + x @ A.T @ B.T, verbose=False)
    assert not grade("04.1", lambda x, W, b, A, B, a: x @ W.T + (b if b is not None else 0) + a * x @ A.T @ B.T, verbose=False)
    assert not grade("04.1", lambda x, W, b, A, B, a: x @ W.T + (a / A.shape[0]) * x @ A.T @ B.T, verbose=False)
    # wrong counts: a full-rank r*in*out; counting only A
    assert not grade("04.2", lambda shapes, r: sum(r * o * i for o, i in shapes), verbose=False)
    assert not grade("04.2", lambda shapes, r: sum(r * i for o, i in shapes), verbose=False)
    # wrong merges: no scaling; in place
    assert not grade("04.3", lambda W, A, B, a: W + B @ A, verbose=False)
    assert not grade("04.3", lambda W, A, B, a: W.add_((a / A.shape[0]) * (B @ A)), verbose=False)
