"""Review by a person: locate first errors and vet step pairs on a local web page
(``stepdpo review``); the decisions feed the pipeline like any judge's output."""

from stepdpo.review.store import Review, decisions_path, load_items

__all__ = ["Review", "decisions_path", "load_items"]
