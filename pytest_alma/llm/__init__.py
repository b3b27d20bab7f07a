"""LLM access: client, loopback gateway, response cache, pricing and the scripted test model.

Modules (imported directly; this package imports nothing heavy on its own, so the pytest glue
can import it cheaply):

* :mod:`~pytest_alma.llm.models`: model strings with a reasoning effort (``gpt-5-nano/low``).
* :mod:`~pytest_alma.llm.errors`: the exceptions callers catch.
* :mod:`~pytest_alma.llm.cache`: the content-addressed SQLite response cache.
* :mod:`~pytest_alma.llm.pricing`: USD prices and the cost of a call's usage.
* :mod:`~pytest_alma.llm.accounting`: token, call and dollar counters.
* :mod:`~pytest_alma.llm.gateway`: the session's OpenAI-compatible proxy on 127.0.0.1.
* :mod:`~pytest_alma.llm.client`: :class:`LLMClient`, used by the agent loop and the designs.
* :mod:`~pytest_alma.llm.replay`: the committed replay file of a recorded run (deterministic CI).
* :mod:`~pytest_alma.llm.scripted` (+ ``scripted_policies``, one ``scripted_<env>`` policy per
  environment and baseline, ``scripted_meta`` for the search's meta-agent, ``embedding``,
  ``faults``): the scripted model, a TEST DOUBLE served over HTTP.
"""
