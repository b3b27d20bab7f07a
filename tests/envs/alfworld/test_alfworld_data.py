"""The ALFWorld data folder: where it is looked for, and the error when it is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_alma.envs.alfworld.data import (
    DATA_ENV_VAR,
    JSON_FOLDER,
    SPLIT_FOLDERS,
    ALFWorldDataError,
    data_root,
    split_folder,
    synthetic_data_root,
)


def _assert_says_how_to_get_it(message: str) -> None:
    assert "alfworld-download" in message
    assert "internet" in message
    assert DATA_ENV_VAR in message


def test_missing_folder_gives_the_documented_error(tmp_path: Path) -> None:
    with pytest.raises(ALFWorldDataError) as caught:
        data_root(tmp_path / "nowhere")
    assert "does not exist" in str(caught.value)
    _assert_says_how_to_get_it(str(caught.value))


def test_empty_folder_names_every_missing_split(tmp_path: Path) -> None:
    with pytest.raises(ALFWorldDataError) as caught:
        data_root(tmp_path)
    message = str(caught.value)
    for folder in SPLIT_FOLDERS.values():
        assert f"{JSON_FOLDER}/{folder}" in message
    _assert_says_how_to_get_it(message)


def test_folder_with_only_some_splits_names_the_missing_ones(tmp_path: Path) -> None:
    (tmp_path / JSON_FOLDER / "train").mkdir(parents=True)
    with pytest.raises(ALFWorldDataError) as caught:
        data_root(tmp_path)
    assert "valid_seen" in str(caught.value) and "valid_unseen" in str(caught.value)
    assert f"{JSON_FOLDER}/train" not in str(caught.value)


def test_the_error_is_a_file_not_found_error(tmp_path: Path) -> None:
    # Callers that already handle FileNotFoundError keep working.
    with pytest.raises(FileNotFoundError):
        data_root(tmp_path / "nowhere")


def test_env_var_is_used_when_no_path_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV_VAR, str(synthetic_data_root()))
    assert data_root() == synthetic_data_root()


def test_env_var_pointing_nowhere_gives_the_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(ALFWorldDataError):
        data_root()


def test_environment_reports_missing_data_before_anything_else(tmp_path: Path) -> None:
    from pytest_alma.envs.alfworld.adapter import ALFWorldEnvironment

    with pytest.raises(ALFWorldDataError):
        ALFWorldEnvironment(tmp_path / "nowhere")
    # Checked before alfworld is imported, which would create the folder.
    assert not (tmp_path / "nowhere").exists()


def test_synthetic_folder_is_a_valid_data_folder() -> None:
    assert data_root(synthetic_data_root()) == synthetic_data_root()


def test_unknown_split_is_rejected() -> None:
    with pytest.raises(ValueError, match="eval_in_distribution"):
        split_folder(synthetic_data_root(), "valid_seen")
