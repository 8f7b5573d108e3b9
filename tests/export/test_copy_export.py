"""A recipe's copy of its model beside the report replaces only its own earlier copy, never a user's folder."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from atomforge.pipeline.export.files import copy_export
from atomforge.pipeline.models.folder import UnsafeFolderError

SHIPPED = Path(__file__).resolve().parents[2] / "results" / "finetune-Si" / "model"


def test_copy_then_replace_an_earlier_copy(tmp_path):
    dst = copy_export(SHIPPED, tmp_path / "model")
    assert sorted(p.name for p in dst.iterdir()) == sorted(p.name for p in SHIPPED.iterdir())
    assert (dst / "model.safetensors").read_bytes() == (SHIPPED / "model.safetensors").read_bytes()
    (dst / "model.safetensors").write_bytes(b"stale")  # an earlier run's copy
    copy_export(SHIPPED, dst)
    assert (dst / "model.safetensors").read_bytes() == (SHIPPED / "model.safetensors").read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging or old folder left behind


def test_refuses_a_folder_that_is_not_an_export(tmp_path):
    dst = tmp_path / "model"
    dst.mkdir()
    (dst / "notes.txt").write_text("a user's work")
    with pytest.raises(UnsafeFolderError, match="not an atomforge export"):
        copy_export(SHIPPED, dst)
    assert (dst / "notes.txt").read_text() == "a user's work"


def test_refuses_an_export_holding_other_files(tmp_path):
    dst = shutil.copytree(SHIPPED, tmp_path / "model")
    (dst / "analysis.ipynb").write_text("{}")
    with pytest.raises(UnsafeFolderError, match="also holds"):
        copy_export(SHIPPED, dst)
    assert (dst / "analysis.ipynb").exists()
