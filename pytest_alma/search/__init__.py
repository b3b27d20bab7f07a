"""The ALMA meta-agent search (``pytest --alma-search``; docs/search.md).

Modules, one job each:

* :mod:`~pytest_alma.search.after_session`: the entry point the plugin calls after a session.
* :mod:`~pytest_alma.search.loop`: seeding, parent selection, generations and the budget.
* :mod:`~pytest_alma.search.child`: one child's steps, each committed before the next.
* :mod:`~pytest_alma.search.archive`: the SQLite archive (crash-safe, resumable).
* :mod:`~pytest_alma.search.selection`: the visit-penalised softmax and its saved random state.
* :mod:`~pytest_alma.search.prompts` and :mod:`~pytest_alma.search.meta`: the meta-agent's
  prompts and its three calls (analysis against a JSON schema, code generation, repair).
* :mod:`~pytest_alma.search.edits`: code extraction and tolerant SEARCH/REPLACE edits.
* :mod:`~pytest_alma.search.novelty`: normalised source digests and near-duplicate detection.
* :mod:`~pytest_alma.search.static_checks`, :mod:`~pytest_alma.search.import_check` and
  :mod:`~pytest_alma.search.subsession`: the verification cascade and evaluation.
* :mod:`~pytest_alma.search.evidence`: rewards, held-out tasks, episodes shown to the meta-agent.
* :mod:`~pytest_alma.search.provenance`: the docstring of a written design.
* :mod:`~pytest_alma.search.status`: ``python -m pytest_alma search status``.
"""
