"""Finding a design's class from its syntax tree, without running the module."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from pytest_alma.design import load_design
from pytest_alma.sandbox.static_find import DesignSpec, StaticFindError, find_design

from .conftest import write_design


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write_design(
        tmp_path,
        """
        from pytest_alma import MemoryDesign

        class Broken(MemoryDesign):
            def general_update(self, trajectory)
                pass
        """,
    )
    with pytest.raises(StaticFindError) as info:
        find_design(path)
    message = str(info.value)
    assert f"{path}:4: syntax error" in message
    assert "def general_update(self, trajectory)" in message


def test_no_design_class_lists_the_classes_found(tmp_path: Path) -> None:
    path = write_design(
        tmp_path,
        """
        class Helper:
            pass

        class Other(dict):
            pass
        """,
    )
    with pytest.raises(StaticFindError, match=r"no memory design class found") as info:
        find_design(path)
    assert "(classes defined: Helper, Other)" in str(info.value)


def test_no_classes_at_all_says_so(tmp_path: Path) -> None:
    path = write_design(tmp_path, "x = 1\n")
    with pytest.raises(StaticFindError, match=r"classes defined: no classes at all"):
        find_design(path)


def test_several_design_classes_are_named_sorted(tmp_path: Path) -> None:
    path = write_design(
        tmp_path,
        """
        from pytest_alma import MemoryDesign

        class Zeta(MemoryDesign):
            pass

        class Alpha(MemoryDesign):
            pass

        class Mid(Zeta):
            pass
        """,
    )
    with pytest.raises(StaticFindError) as info:
        find_design(path)
    assert "several memory design classes found (Alpha, Mid, Zeta)" in str(info.value)
    assert "abstract = True" in str(info.value)  # the advice for shared bases


def test_abstract_intermediate_base_is_excluded(tmp_path: Path) -> None:
    path = write_design(
        tmp_path,
        """
        from pytest_alma import MemoryDesign

        class Base(MemoryDesign):
            abstract = True

        class Typed(MemoryDesign):
            abstract: bool = True

        class Concrete(Base):
            pass
        """,
    )
    assert find_design(path).class_name == "Concrete"


def test_abstract_false_still_counts(tmp_path: Path) -> None:
    path = write_design(
        tmp_path,
        """
        from pytest_alma import MemoryDesign

        class Base(MemoryDesign):
            abstract = False

        class Concrete(Base):
            pass
        """,
    )
    with pytest.raises(StaticFindError, match=r"\(Base, Concrete\)"):
        find_design(path)


def test_design_subclassing_a_same_module_abstract_base_is_found(tmp_path: Path) -> None:
    # Transitive bases within the module, in either order of definition.
    path = write_design(
        tmp_path,
        """
        import pytest_alma

        def make_base():
            return object

        class Helper(make_base()):
            pass

        class Leaf(Middle):
            pass

        class Middle(Root):
            abstract = True

        class Root(pytest_alma.MemoryDesign):
            abstract = True
        """,
    )
    spec = find_design(path)
    assert spec == DesignSpec(path.resolve(), "Leaf", spec.source_hash)
    assert spec.name == "design"


def test_attribute_base_is_found(tmp_path: Path) -> None:
    path = write_design(
        tmp_path,
        """
        import pytest_alma

        class ViaAttribute(pytest_alma.MemoryDesign):
            pass
        """,
    )
    assert find_design(path).class_name == "ViaAttribute"


def test_aliased_base_is_found_as_the_import_finds_it(tmp_path: Path) -> None:
    path = write_design(
        tmp_path,
        """
        from pytest_alma import MemoryDesign as Base

        class Aliased(Base):
            pass
        """,
    )
    assert find_design(path).class_name == "Aliased"
    assert load_design(path).cls.__name__ == "Aliased"


def test_only_top_level_classes_count(tmp_path: Path) -> None:
    path = write_design(
        tmp_path,
        """
        from pytest_alma import MemoryDesign

        def factory():
            class Hidden(MemoryDesign):
                pass
            return Hidden

        class Real(MemoryDesign):
            class Nested(MemoryDesign):
                pass
        """,
    )
    assert find_design(path).class_name == "Real"


@pytest.mark.parametrize(
    "body",
    ["while True:\n    pass\n", "raise SystemExit(3)\n", "import os\nos._exit(4)\n"],
    ids=["loops", "exits", "os-exit"],
)
def test_module_that_would_hang_or_exit_is_found_without_running_it(
    tmp_path: Path, body: str
) -> None:
    marker = tmp_path / "ran"
    source = (
        "from pytest_alma import MemoryDesign\n"
        f"open({str(marker)!r}, 'w').close()\n"
        f"{body}"
        "class Found(MemoryDesign):\n"
        "    pass\n"
    )
    path = tmp_path / "design.py"
    path.write_text(source, encoding="utf-8")
    began = time.perf_counter()
    spec = find_design(path)
    assert time.perf_counter() - began < 1.0
    assert spec.class_name == "Found"
    assert not marker.exists(), "the module was executed"


def test_source_hash_is_the_content_hash_load_design_uses(tmp_path: Path) -> None:
    source = (
        '"""A tiny design: ünïcode in the source too."""\n'
        "from pytest_alma import MemoryDesign\n\n\n"
        "class Hashed(MemoryDesign):\n"
        "    pass\n"
    )
    path = tmp_path / "hashed_design.py"
    path.write_text(source, encoding="utf-8")
    spec = find_design(path)
    assert spec.source_hash == hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]
    loaded = load_design(path)
    assert spec.source_hash == loaded.source_hash
    assert spec.class_name == loaded.cls.__name__
    assert spec.path == loaded.path

    path.write_text(source + "# changed\n", encoding="utf-8")
    assert find_design(path).source_hash != spec.source_hash


def test_unreadable_file_is_a_static_find_error(tmp_path: Path) -> None:
    with pytest.raises(StaticFindError, match=r"cannot read design file"):
        find_design(tmp_path / "missing.py")
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"x = '\xe9'\n")
    with pytest.raises(StaticFindError, match=r"cannot read design file"):
        find_design(latin)
