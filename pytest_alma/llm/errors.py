"""The exceptions raised by the LLM access layer.

They are shared by the cache (which raises :class:`CacheMissError` in replay mode), the gateway
(which turns them into HTTP errors) and the client (which turns those HTTP errors back into these
exceptions), so that callers catch one small hierarchy wherever the failure happened.
"""

from __future__ import annotations


class LLMError(Exception):
    """Base class of every error raised by ``pytest_alma.llm``."""


class CacheMissError(LLMError):
    """A request was not in the response cache and the cache is in replay-only mode."""

    #: The agent loop re-raises fatal errors instead of ending the episode quietly.
    alma_fatal = True


class BudgetExceededError(LLMError):
    """The session's dollar budget (``--alma-budget-usd``) cannot cover a call's worst case."""

    alma_fatal = True


class UnknownPriceError(BudgetExceededError):
    """A budget is set and the model has no known price, so no call to it can be admitted; price
    it with ``--alma-prices=FILE``."""

    alma_fatal = True


class LLMUnavailableError(LLMError):
    """The model could not be reached or kept failing after the gateway's retries."""
