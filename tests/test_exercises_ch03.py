"""Chapter 03's exercises: the reference solutions pass their graders, typical wrong answers and the stub fail."""
from utils.exercises import grade
from utils.exercises.solutions import ch03


def test_chapter_03_exercises():
    from utils.world import score

    assert grade("03.1", ch03.rft_filter, verbose=False)
    assert grade("03.2", ch03.forgetting, verbose=False)
    # wrong answers: keep by the verifier only (format ignored); no de-duplication; crash on None
    verifier_only = lambda probs, samples, m=None: [(p, t) for p, ts in zip(probs, samples) for t in ts  # noqa: E731
                                                    if isinstance(t, str) and score(p, t) == 1.0][: m or None]
    assert not grade("03.1", verifier_only, verbose=False)
    no_dedupe = lambda probs, samples, m=None: [(p, t.strip()) for p, ts in zip(probs, samples) for t in ts  # noqa: E731
                                                if isinstance(t, str) and ch03.rft_filter([p], [[t]])]
    assert not grade("03.1", no_dedupe, verbose=False)
    assert not grade("03.1", lambda probs, samples, m=None: [(p, t) for p, ts in zip(probs, samples) for t in ts if "<answer>" in t], verbose=False)
    # wrong answers: all skills averaged (trained ones included); clipped at zero; after - before
    assert not grade("03.2", lambda b, a, tr: sum(b[s] - a[s] for s in b) / len(b), verbose=False)
    assert not grade("03.2", lambda b, a, tr: ch03.forgetting({s: max(b[s], a[s]) for s in b}, a, tr), verbose=False)
    assert not grade("03.2", lambda b, a, tr: -ch03.forgetting(b, a, tr), verbose=False)
