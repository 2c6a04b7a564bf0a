"""Checks by value that nothing of a split result's private part, or of its whole set, reaches
a student before final results: under whatever key or in whatever format it might appear."""

from __future__ import annotations

from typing import Any


def split_metrics(public: float, private: float) -> dict[str, Any]:
    """A keypoint result with both parts of four images each: the whole set's MSE is the mean of
    the parts' MSEs, and its score follows from it."""
    whole_mse = (1 / (2 * public) + 1 / (2 * private)) / 2
    return {
        "score": 1 / (2 * whole_mse),
        "mse": whole_mse,
        "count": 8,
        "public": {"score": public, "mse": 1 / (2 * public), "count": 4},
        "private": {"score": private, "mse": 1 / (2 * private), "count": 4},
        "public_count": 4,
        "private_count": 4,
        "split_seed": "0123456789abcdef",
    }


def hidden_figures(public: float, private: float) -> list[str]:
    """Every way a page, an email, the JSON or a chart could print the private part's figures
    or the whole set's: Python's and JSON's repr, and the two and six decimals pages use."""
    metrics = split_metrics(public, private)
    scores, errors = [private, metrics["score"]], [1 / (2 * private), metrics["mse"]]
    texts = [text for value in scores for text in (repr(value), f"{value:.2f}")] + [
        text for value in errors for text in (repr(value), f"{value:.6f}")
    ]
    # A short repr ("0.002", "50.0") turns up in any SVG's coordinates; the formatted ones stay.
    return [text for text in texts if len(text) >= 6]


def assert_hidden(text: str, public: float, private: float) -> None:
    leaked = sorted({figure for figure in hidden_figures(public, private) if figure in text})
    assert not leaked, f"private or whole-set figures shown to a student: {leaked}"


def copy_values(mine: Any, theirs: Any) -> list[str]:
    """Everything by which a page could tell a student about copies of their upload (``mine``,
    a submission): the other upload's student and id, the fingerprints, the evidence."""
    from submissions.models import CopyPair

    user = theirs.enrollment.user
    values = [user.username, user.get_full_name(), theirs.enrollment.handle, str(theirs.pk)]
    values += [mine.weights_fingerprint, mine.predictions_fingerprint]
    values += [str(value) for value in CopyPair.Evidence.values]
    values += [str(label) for label in CopyPair.Evidence.labels]
    values += ["copies", "copied", "Copies", "similarity", "Similarity"]
    return [value for value in values if value]


def assert_no_copies(text: str, mine: Any, theirs: Any) -> None:
    mine.refresh_from_db()
    leaked = sorted({value for value in copy_values(mine, theirs) if value in text})
    assert not leaked, f"a student's page says something about copies: {leaked}"
