"""The novelty check as the loop applies it: by code text, and optionally by code embedding."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_alma.llm.scripted_meta import template_design
from pytest_alma.search import archive as A
from pytest_alma.search.loop import Search, SearchContext
from pytest_alma.settings import resolve


class FixedEmbeddings:
    """A meta-agent stand-in whose embeddings are chosen by the test."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors
        self.asked: list[str] = []

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.asked += list(texts)
        return [next(v for k, v in self.vectors.items() if k in t) for t in texts]


def search_in(tmp_path: Path, **options: str) -> Search:
    settings = resolve(options, {}, {})
    ctx = SearchContext(
        settings=settings,
        rootdir=tmp_path,
        store=tmp_path / ".alma",
        run_dir=tmp_path,
        results={},
        attach={},
        workers=1,
        model="scripted",
        test_double=True,
        stats=lambda: {},
        design_dirs=[tmp_path / "designs"],
        progress=lambda line: None,
    )
    return Search(ctx)


def claim(search: Search, cid: str, code: str, meta: Any) -> bool:
    search.archive.add_candidate(id=cid, generation=1, origin="child", status=A.ANALYSED)
    candidate = search.archive.candidate(cid)
    assert candidate is not None
    loop = asyncio.new_event_loop()
    try:
        return search._claim_source(candidate, code, 0, meta, loop)
    finally:
        loop.close()


def test_text_novelty_rejects_identical_code_modulo_comments(tmp_path: Path) -> None:
    search = search_in(tmp_path)
    code = template_design("x")
    assert claim(search, "g1.0", code, None)
    assert not claim(search, "g1.1", "# a comment\n" + code, None)
    duplicate = search.archive.candidate("g1.1")
    assert duplicate is not None and duplicate.duplicate_of == "g1.0"
    assert "code similarity" in (duplicate.reason or "")


def test_embedding_novelty_is_off_by_default_and_rejects_close_embeddings_when_on(
    tmp_path: Path,
) -> None:
    first, second, third = template_design("root"), template_design("child 3"), template_design("q")
    meta = FixedEmbeddings({"": [1.0, 0.0]})
    off = search_in(tmp_path / "off")
    assert claim(off, "g1.0", first, meta) and claim(off, "g1.1", second, meta)
    assert meta.asked == []  # no embedding calls unless asked for

    on = search_in(tmp_path / "on", **{"search-novelty-embedding": "0.95"})
    signatures = [_signature(code) for code in (first, second, third)]
    assert len(set(signatures)) == 3
    vectors = FixedEmbeddings(
        {
            signatures[0]: [1.0, 0.0],
            signatures[1]: [0.99, 0.141],  # cosine 0.990 with the first
            signatures[2]: [0.0, 1.0],  # orthogonal
        }
    )
    assert claim(on, "g1.0", first, vectors)
    assert not claim(on, "g1.1", second, vectors)
    rejected = on.archive.candidate("g1.1")
    assert rejected is not None and rejected.status == A.DUPLICATE
    assert rejected.duplicate_of == "g1.0" and "embedding cosine" in (rejected.reason or "")
    assert claim(on, "g1.2", third, vectors)
    assert on.archive.candidate("g1.2").embedding is not None  # type: ignore[union-attr]


def _signature(code: str) -> str:
    """A line that tells the three test designs apart in their normalised source."""
    from pytest_alma.search.novelty import normalised_source

    lines = normalised_source(code).splitlines()
    return "\n".join(lines[:12])
