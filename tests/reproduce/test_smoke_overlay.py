"""`smoke=true` overlays a recipe's smoke_settings, but a key the user set on the command line wins."""
from __future__ import annotations

from atomforge.pipeline.reproduce.runner import settings


def _cfg(overrides: list[str], **given) -> dict:
    r = {"smoke": True, "scratch_lrs": [2e-3, 1e-3, 5e-4], "budgets": [1],
         "replay": {"corpus": "teacher_foundation", "corpus_root": None},
         "smoke_settings": {"scratch_lrs": [2e-3, 1e-3], "budgets": [1],
                            "replay": {"corpus": "teacher_tiny", "corpus_root": "w/data/corpus"}}}
    for k, v in given.items():
        r[k] = v
    return {"reproduce": r, "model": {}, "train": {}, "deepspeed": {}, "world_size": 1, "seed": 0,
            "_overrides": overrides}


def test_overlay_applies_where_the_user_set_nothing():
    s = settings(_cfg(["reproduce.smoke=true"]))
    assert s["scratch_lrs"] == [2e-3, 1e-3]
    assert s["replay"] == {"corpus": "teacher_tiny", "corpus_root": "w/data/corpus"}


def test_a_key_set_on_the_command_line_wins_over_the_overlay():
    cfg = _cfg(["reproduce.smoke=true", "reproduce.scratch_lrs=[0.002]", "reproduce.replay.corpus_root=/c"],
               scratch_lrs=[2e-3], replay={"corpus": "teacher_foundation", "corpus_root": "/c"})
    s = settings(cfg)
    assert s["scratch_lrs"] == [2e-3]
    assert s["replay"] == {"corpus": "teacher_tiny", "corpus_root": "/c"}  # the rest of the overlay still applies
    assert settings({**cfg, "_overrides": []})["scratch_lrs"] == [2e-3, 1e-3]  # the same values, not given: overlay


def test_without_smoke_the_overlay_is_not_used():
    cfg = _cfg([])
    cfg["reproduce"]["smoke"] = False
    assert settings(cfg)["scratch_lrs"] == [2e-3, 1e-3, 5e-4] and "smoke_settings" not in settings(cfg)
