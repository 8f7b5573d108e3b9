"""Tampered or incomplete folders and bad input give one clear error, never wrong numbers."""
from __future__ import annotations

import json
import shutil

import pytest
from ase.build import bulk

pytestmark = pytest.mark.slow


@pytest.fixture
def folder(exported, tmp_path):
    return shutil.copytree(exported, tmp_path / "copy")


def test_missing_weights(folder):
    from atomforge.pipeline.export import load

    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        load(folder)


def test_wrong_checksum(folder):
    from atomforge.pipeline.export import load

    w = folder / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-10] ^= 0xFF  # one flipped byte inside a tensor
    w.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match the sha256 in config.json"):
        load(folder)


def test_newer_format_version(folder):
    from atomforge.pipeline.export import FORMAT_VERSION, load

    cfg = json.loads((folder / "config.json").read_text())
    cfg["format_version"] = FORMAT_VERSION + 1
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="upgrade atomforge"):
        load(folder)


def test_not_a_folder(tmp_path):
    from atomforge.pipeline.export import load

    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load(tmp_path / "empty")


def test_element_outside_model(exported):
    from atomforge.pipeline.export import calculator

    atoms = bulk("Si", "diamond", a=5.43)
    atoms.calc = calculator(exported)
    with pytest.raises(ValueError, match=r"\['Si'\] are outside this model's list"):
        atoms.get_potential_energy()


def test_hub_id_offline_is_a_clear_error(monkeypatch, tmp_path):
    from atomforge.pipeline.export import load

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    with pytest.raises(FileNotFoundError, match="not in the cache and the hub cannot be reached"):
        load("hf://someone/no-such-model")
    # a mistyped local path is never taken for a hub id (that would fetch somebody else's model)
    with pytest.raises(FileNotFoundError,
                       match=r"model folder not found: someone/no-such-model \(a hub repository is written hf://"):
        load("someone/no-such-model")


def test_push_without_token_or_network(exported, monkeypatch, tmp_path):
    from atomforge.pipeline.cli import main
    from atomforge.pipeline.export.hub import push

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
    monkeypatch.setattr(c, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf" / "stored_tokens"))
    with pytest.raises(PermissionError, match="no Hugging Face token"):
        push(exported, "someone/model")
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConnectionError, match="unreachable"):
        push(exported, "someone/model", token="hf_dummy")
    assert main(["export", "push", f"out={exported}"]) == 2  # no repo=: one-line usage error


def test_card_front_matter_is_valid_hub_metadata(exported):
    from huggingface_hub import ModelCard

    card = ModelCard.load(exported / "README.md")
    d = card.data.to_dict()
    assert d["library_name"] == "atomforge" and d["license"] == "mit"
    assert "interatomic-potential" in d["tags"] and {"Cu", "Al"} <= set(d["tags"])
    assert d["datasets"] and "Intended use and limits" in card.text
    assert "```bibtex" in card.text and "@article{jacobsen1996emt" in card.text  # cite the data's generator
    cfg = json.loads((exported / "config.json").read_text())
    assert cfg["weights_sha256"] in card.text and cfg["units"]["energy"] == "eV"
