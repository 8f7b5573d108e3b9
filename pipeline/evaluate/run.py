"""`atomforge eval`: load a model (exported folder or run), score it on a dataset split, write the report."""
from __future__ import annotations

from pathlib import Path

from pipeline.evaluate.report import write_report
from pipeline.evaluate.standard import predict_structures, read_split, standard_metrics


def load_model(path: str, device: str = "cpu"):
    p = Path(path)
    from pipeline.export.hub import load

    if (p / "config.json").is_file() and (p / "model.safetensors").is_file():
        return load(p, device)
    if (p / "checkpoints").is_dir():  # a run directory: export its latest checkpoint next to it first
        from pipeline.export.hub import export

        return load(export(str(p), str(p / "hub")), device)
    raise FileNotFoundError(f"{path} is neither an exported model folder nor a run directory")


def evaluate(model_path: str, data_root: str, split: str, out_dir: str, device: str = "cpu") -> dict:
    model = load_model(model_path, device)
    pairs = predict_structures(model, read_split(data_root, split), device=device)
    report = {"model": str(model_path), "data": str(data_root), "split": split, **standard_metrics(pairs)}
    write_report(out_dir, report, f"Evaluation of {Path(model_path).name} on {Path(data_root).name}/{split}")
    return report
