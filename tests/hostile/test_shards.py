"""Shards damaged after the build: training and evaluation either stop with one line naming the shard and the
key, or (on_error=skip) drop and count the damaged samples and deliver every other one (each is checked against
its own recorded digest). Never a wrong value."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from atomforge.data_prep.integrity import CorruptShard
from atomforge.data_prep.sample_codec import decode
from atomforge.pipeline.data.loader import CorruptInput, LoaderConfig, ShardBatches
from atomforge.pipeline.data.dataset import read_split
from shard_damage import (BAD_FORCE, copy_dataset, drop_digests, drop_shard_hashes, edit_energy, flip_force,
                          rewrite_force_consistently, sha, swap, train_shards, truncate)

REPO = Path(__file__).resolve().parents[2]


def planned(ds: ShardBatches, shard: str | None = None) -> set:
    return {s.key for b in ds.plan for s in b if shard is None or s.shard == shard}


def delivered(ds: ShardBatches) -> tuple[list, list]:
    """(keys, forces arrays) of every batch of one epoch."""
    keys, forces = [], []
    for b in ds:
        keys += list(b.sid)
        forces.append(b.forces.numpy())
    return keys, forces


def raised(cfg: LoaderConfig) -> str:
    with pytest.raises(CorruptInput) as e:
        delivered(ShardBatches(cfg))
    return str(e.value)


def one_line(msg: str, *words: str) -> bool:
    return "\n" not in msg and all(w in msg for w in words)


def check_skip(cfg: LoaderConfig, damaged: set, tally) -> bool:
    """on_error=skip: the damaged samples never arrive and are counted, every other planned sample arrives once."""
    cfg.on_error = "skip"
    ds = ShardBatches(cfg)
    keys, forces = delivered(ds)
    damaged = damaged & planned(ds)
    good = planned(ds) - damaged
    ok = (ds.skipped == len(damaged) > 0 and sorted(keys) == sorted(good)
          and not any(np.isclose(f, BAD_FORCE).any() for f in forces))
    tally.lost(len(good - set(keys)))  # good samples that did not make it through
    return ok


def test_flipped_force_in_npz_names_shard_key_and_member_or_is_skipped(emt_dataset, tmp_path, tally):
    """The issue's case: a stored force changed to 1234.5 inside a shard; the npz CRC catches it."""
    tally.tried()
    root = copy_dataset(emt_dataset, tmp_path / "flip")
    shard = train_shards(root)[0]
    key = flip_force(shard)
    before = sha(shard)
    cfg = LoaderConfig(root=str(root), max_atoms=64, shuffle=False)
    msg = raised(cfg)
    ok = one_line(msg, shard.name, key, "forces.npy", "CRC-32")
    # skip: the shard fails its sha256 too; its other samples match their own digests and arrive
    ok &= check_skip(cfg, {key}, tally)
    assert ok, msg
    assert sha(shard) == before  # reading never repairs or rewrites the user's file
    tally.handled()


def test_flipped_force_without_shard_hashes_drops_only_that_sample(emt_dataset, tmp_path, tally, caplog):
    """A dataset built before shard hashes still loads (one warning) and the CRC alone drops just the damaged sample."""
    tally.tried()
    root = copy_dataset(emt_dataset, tmp_path / "old")
    drop_shard_hashes(root)
    key = flip_force(train_shards(root)[0])
    cfg = LoaderConfig(root=str(root), max_atoms=64, shuffle=False)
    msg = raised(cfg)
    with caplog.at_level(logging.WARNING):
        ok = check_skip(cfg, {key}, tally)
        ShardBatches(cfg)  # a second epoch: no second warning
    warned = [r for r in caplog.records if "records no shard_sha256" in r.getMessage()]
    assert one_line(msg, key, "CRC-32") and ok and len(warned) == 1, (msg, len(warned))
    tally.handled()


@pytest.mark.parametrize("damage", [flip_force, edit_energy], ids=["npz-flip", "json-edited"])
def test_dataset_without_digests_drops_a_shard_that_fails_its_sha256(emt_dataset, tmp_path, damage):
    """A manifest written before per-sample digests: nothing vouches for the shard's other samples, so (as before
    digests) none of them is delivered; the other shards arrive whole, and evaluation refuses the shard."""
    root = copy_dataset(emt_dataset, tmp_path / "nodigest")
    drop_digests(root)
    shard = train_shards(root)[0]
    key = damage(shard)
    cfg = LoaderConfig(root=str(root), max_atoms=64, shuffle=False)
    msg = raised(cfg)
    cfg.on_error = "skip"
    ds = ShardBatches(cfg)
    keys, forces = delivered(ds)
    lost = planned(ds, shard.name)
    assert one_line(msg, shard.name, *(["sha256"] if damage is edit_energy else [key, "CRC-32"])), msg
    assert ds.skipped == len(lost) > 1 and sorted(keys) == sorted(planned(ds) - lost)
    test = sorted((root / "shards").glob("test-*.tar"))[0]
    damage(test)
    with pytest.raises(CorruptShard, match=rf"{test.name}.*(sha256|CRC-32)"):
        list(read_split(str(root), "test"))


def test_evaluation_reads_a_shard_whose_samples_all_match_their_digests(emt_dataset, tmp_path):
    """Bytes appended to a test shard: its sha256 fails, but no sample is damaged, so every sample is scored."""
    root = copy_dataset(emt_dataset, tmp_path / "appended")
    shard = sorted((root / "shards").glob("test-*.tar"))[0]
    with open(shard, "ab") as f:
        f.write(b"\0" * 1024)
    keys = [s.info["key"] for s in read_split(str(root), "test")]
    assert sorted(keys) == sorted(r["key"] for r in _manifest(root) if r["shard"].startswith("test-"))
    drop_digests(root)
    with pytest.raises(CorruptShard, match=rf"{shard.name} fails its sha256"):
        list(read_split(str(root), "test"))


@pytest.mark.parametrize("damage", [rewrite_force_consistently, edit_energy], ids=["npz-crc-recomputed", "json-edited"])
def test_consistent_rewrite_is_caught_by_the_sha256s(emt_dataset, tmp_path, tally, damage):
    tally.tried()
    root = copy_dataset(emt_dataset, tmp_path / damage.__name__)
    shard = train_shards(root)[0]
    key = damage(shard)
    cfg = LoaderConfig(root=str(root), max_atoms=64, shuffle=False)
    # the CRCs alone would deliver it: this damage is only visible to a sha256 (the shard's, or the sample's)
    old = copy_dataset(root, tmp_path / "nohash")
    drop_shard_hashes(old)
    ds = ShardBatches(LoaderConfig(root=str(old), max_atoms=64, shuffle=False, on_error="skip"))
    assert key not in delivered(ds)[0] and ds.skipped == 1  # the sample's own digest, without the card's hashes
    drop_digests(old)
    ds = ShardBatches(LoaderConfig(root=str(old), max_atoms=64, shuffle=False, on_error="skip"))
    assert key in delivered(ds)[0] and ds.skipped == 0
    msg = raised(cfg)
    ok = one_line(msg, shard.name, key, "sha256") and check_skip(cfg, {key}, tally)
    assert ok, msg
    tally.handled()


def test_truncated_shard_names_shard_and_key_or_is_skipped(emt_dataset, tmp_path, tally):
    tally.tried()
    root = copy_dataset(emt_dataset, tmp_path / "trunc")
    shard = train_shards(root)[0]
    first = json.loads((root / "card.json").read_text())["shard_sha256"][shard.name]
    cut = truncate(shard)  # the samples the cut damaged or removed; those before it arrive
    cfg = LoaderConfig(root=str(root), max_atoms=64, shuffle=False)
    msg = raised(cfg)
    ok = one_line(msg, shard.name, "unreadable after key") and check_skip(cfg, cut, tally)
    assert ok and first != sha(shard) and cut < planned(ShardBatches(cfg), shard.name), msg
    tally.handled()


def test_swapped_shards_are_refused_or_read_where_their_bytes_are(emt_dataset, tmp_path, tally):
    """Two whole, valid shards under each other's names: every member checks out, the sha256 does not. Each
    file's sha256 is the other's recorded one, so on_error=skip reads each shard's samples from the other file."""
    tally.tried()
    root = copy_dataset(emt_dataset, tmp_path / "swap")
    a, b = train_shards(root)[:2]
    swap(a, b)
    cfg = LoaderConfig(root=str(root), max_atoms=64, shuffle=False)
    msg = raised(cfg)
    cfg.on_error = "skip"
    ds = ShardBatches(cfg)
    keys, _ = delivered(ds)
    ok = one_line(msg, "sha256") and ds.skipped == 0 and sorted(keys) == sorted(planned(ds))
    tally.lost(len(planned(ds) - set(keys)))
    assert ok, msg
    tally.handled()


def test_skips_in_loader_worker_processes_are_counted(emt_dataset, tmp_path):
    """The count lives in shared memory: the trainer reads it in the main process while workers do the reading."""
    from atomforge.pipeline.data.loader import make_loader

    root = copy_dataset(emt_dataset, tmp_path / "workers")
    key = flip_force(train_shards(root)[1])
    loader = make_loader(LoaderConfig(root=str(root), max_atoms=64, num_workers=2, on_error="skip"))
    keys = [k for b in loader for k in b.sid]
    assert loader.dataset.skipped == 1 and sorted(keys) == sorted(planned(loader.dataset) - {key})


def test_each_epoch_hashes_a_shard_once_and_a_failed_shard_is_reread_by_digests(emt_dataset, tmp_path, monkeypatch):
    import atomforge.data_prep.integrity as integrity

    opened = []
    real = integrity.ShardReader.__init__

    def spy(self, path, expected=None):
        opened.append((Path(path).name, bool(expected)))
        real(self, path, expected)

    monkeypatch.setattr(integrity.ShardReader, "__init__", spy)
    n = len(planned(ShardBatches(LoaderConfig(root=str(emt_dataset)))))

    def three_passes(root, **kw):  # an epoch drawing the dataset three times: every shard is read three times
        return ShardBatches(LoaderConfig(root="", mix=[{"root": str(root)}], epoch_size=3 * n, max_atoms=64, **kw))

    ds = three_passes(emt_dataset)
    delivered(ds)
    hashed = [name for name, h in opened if h]
    assert len(hashed) == len(set(hashed)) == len({s.shard for b in ds.plan for s in b})
    assert len(opened) > 2 * len(hashed)  # the later passes read without hashing
    opened.clear()
    root = copy_dataset(emt_dataset, tmp_path / "reread")
    bad = train_shards(root)[0]
    key = flip_force(bad)
    ds = three_passes(root, on_error="skip")
    keys, _ = delivered(ds)
    # failed once; later passes read it again, trusting each sample by its digest, without hashing the file
    assert [name for name, h in opened if name == bad.name] == [bad.name] * 3
    assert [h for name, h in opened if name == bad.name] == [True, False, False]
    assert ds.skipped == 3 and sorted(keys) == sorted(s.key for b in ds.plan for s in b if s.key != key)
    opened.clear()
    drop_digests(root)  # built before digests: a failed shard is not trusted, nor read again this epoch
    ds = three_passes(root, on_error="skip")
    keys, _ = delivered(ds)
    assert [name for name, _ in opened].count(bad.name) == 1
    assert ds.skipped == sum(s.shard == bad.name for b in ds.plan for s in b) and not planned(ds, bad.name) & set(keys)


@pytest.mark.parametrize("damage", [flip_force, edit_energy, truncate], ids=["npz-flip", "json-edited", "truncated"])
def test_evaluation_refuses_a_damaged_shard_in_one_line(emt_dataset, tmp_path, tally, damage):
    tally.tried()
    root = copy_dataset(emt_dataset, tmp_path / damage.__name__)
    shard = sorted((root / "shards").glob("test-*.tar"))[0]
    key = damage(shard)
    got = []
    with pytest.raises(CorruptShard) as e:
        for s in read_split(str(root), "test"):
            got.append(s)
    msg = str(e.value)
    words = [shard.name] + {"flip_force": [key, "CRC-32"], "edit_energy": [key, "sha256"]}.get(damage.__name__,
                                                                                                ["unreadable"])
    in_shard = {r["key"] for r in _manifest(root) if r["shard"] == shard.name}
    ok = one_line(msg, *words) and not in_shard & {s.info["key"] for s in got}
    ok &= all(not np.isclose(s.forces, BAD_FORCE).any() for s in got)
    assert ok, msg
    tally.handled()


def _manifest(root: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(root / "manifest.parquet", columns=["key", "shard"]).to_pylist()


def test_evaluation_of_an_intact_dataset_reads_every_sample(emt_dataset):
    keys = [s.info["key"] for s in read_split(str(emt_dataset), "test")]
    assert sorted(keys) == sorted(r["key"] for r in _manifest(emt_dataset) if r["shard"].startswith("test-"))


def test_read_npz_rejects_a_flipped_byte_in_any_array_header_or_stored_crc(emt_dataset):
    """Every member's data and npy header is covered by its CRC-32, not only the forces."""
    import struct
    import tarfile

    from atomforge.data_prep.sample_codec import read_npz

    shard = train_shards(emt_dataset)[0]
    with tarfile.open(shard) as t:
        names = t.getnames()
        key = names[0].split(".")[0]
        sample = {"__key__": key, "__url__": str(shard),
                  **{ext: t.extractfile(f"{key}.{ext}").read() for ext in ("npz", "json")}}
    npz, arrays = sample["npz"], read_npz(sample["npz"])
    assert decode(sample).info["key"] == key  # intact
    spots = [npz.find(a.tobytes()) + a.nbytes // 2 for a in arrays.values() if a.nbytes]  # inside each array's data
    spots += [i + 20 for i in range(len(npz)) if npz.startswith(b"\x93NUMPY", i)]  # inside each npy header
    spots += [i + 14 for i in range(len(npz)) if npz.startswith(b"PK\x03\x04", i)]  # each stored CRC
    assert len(spots) >= 3 * len(arrays)
    for at in spots:
        bad = bytearray(npz)
        bad[at] ^= 0x01
        with pytest.raises(ValueError, match=rf"sample {key} in .*{shard.name} is corrupt") as e:
            decode({**sample, "npz": bytes(bad)})
        assert "\n" not in str(e.value)
    assert struct.unpack_from("<I", npz, 14)[0]  # a real CRC is stored (not zeros)


def _first_read_shard(root: Path) -> Path:
    """The shard the first training batch reads (the trainer's plan: seed 0, max_atoms 128, window 4, rank 0 of 1)."""
    return root / "shards" / ShardBatches(LoaderConfig(root=str(root), max_atoms=128)).plan[0][0].shard


def cli_train(root: Path, run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ATOMFORGE_DEBUG"}
    cmd = [sys.executable, "-m", "atomforge.pipeline.cli", "train", f"data.root={root}", f"run_dir={run_dir}",
           "world_size=1",
           "train.steps=2", "train.max_atoms=128", "train.warmup_steps=1", "train.ckpt_every=0", "train.wandb=false",
           "train.progress=false", "train.final_predictions=0", *extra]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_on_error_is_a_train_setting_of_the_cli(emt_dataset, capsys):
    from atomforge.pipeline.cli import _plain, compose, main, train_config

    tc = train_config(_plain(compose([f"data.root={emt_dataset}", "train.on_error=skip"])))
    assert tc.on_error == "skip" and train_config(_plain(compose([f"data.root={emt_dataset}"]))).on_error == "raise"
    assert main(["train", f"data.root={emt_dataset}", "train.on_error=maybe"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["atomforge: error: on_error must be 'raise' or 'skip', got 'maybe'"]


@pytest.mark.slow
def test_training_on_a_corrupt_shard_stops_naming_shard_and_key(emt_dataset, tmp_path, tally):
    tally.tried()
    root = copy_dataset(emt_dataset, tmp_path / "data")
    shard = _first_read_shard(root)
    key = flip_force(shard)
    p = cli_train(root, tmp_path / "run")
    out = p.stdout + p.stderr
    named = [line for line in out.splitlines() if shard.name in line and key in line and "CRC-32" in line]
    assert p.returncode != 0 and named, out[-3000:]
    assert not (tmp_path / "run" / "summary.json").exists()
    tally.handled()


@pytest.mark.slow
def test_training_with_on_error_skip_counts_the_skipped_samples(emt_dataset, tmp_path, tally):
    """A real 2-step run (CLI, torchrun, DeepSpeed, 1 rank) on a copy whose first-read shard has a flipped force."""
    tally.tried()
    root = copy_dataset(emt_dataset, tmp_path / "data")
    shard = _first_read_shard(root)
    ds = ShardBatches(LoaderConfig(root=str(root), max_atoms=128, on_error="skip"))
    key = flip_force(shard, ds.plan[0][0].key)  # a sample of the first batch
    it = iter(ds)
    first_two = list(next(it).sid) + list(next(it).sid)  # what the trainer's 2 steps draw, and skip on the way
    expected = ds.skipped  # the damaged sample; the shard's others match their digests and are trained on
    assert expected == 1 and key not in first_two
    run = tmp_path / "run"
    p = cli_train(root, run, "train.on_error=skip")
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    summary = json.loads((run / "summary.json").read_text())
    assert [r["step"] for r in steps] == [1, 2] and steps[-1]["corrupt_skipped"] == expected
    assert rows[-1]["final"] and rows[-1]["corrupt_skipped"] == expected
    assert summary["corrupt_skipped"] == expected and summary["steps"] == 2
    assert sum(r["samples"] for r in steps) == len(first_two)  # every delivered sample trained on
    assert "fails its sha256 check" in p.stderr and "CRC-32" in p.stderr  # each skip is logged with its reason
    # stopped after step 1 and resumed: the count carries over the checkpoint and nothing is counted twice
    split = tmp_path / "split"
    first = cli_train(root, split, "train.on_error=skip", "train.stop_after=1")
    assert json.loads((split / "summary.json").read_text())["steps"] == 1, (first.stdout + first.stderr)[-3000:]
    assert [c.name for c in (split / "checkpoints").glob("step_*")] == ["step_00000001"]
    second = cli_train(root, split, "train.on_error=skip")
    assert second.returncode == 0, (second.stdout + second.stderr)[-3000:]
    assert json.loads((split / "summary.json").read_text()) == summary
    tally.lost(expected - 1)
    tally.handled()
