"""PNG plots of a sweep fit: loss vs D per N with the fitted law, iso-FLOP curves, compute-optimal frontier."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from atomforge.pipeline.evaluate.plots import save_figure  # noqa: E402


LABELS = {"final_val_force_mae": "validation force MAE (eV/Å)",
          "downstream_force_mae": "downstream test force MAE (eV/Å)", "val_force_mae": "validation force MAE (eV/Å)",
          "final_val_energy_mae_per_atom": "validation energy MAE (eV/atom)",
          "val_force_rmse": "validation force RMSE (eV/Å)",
          "val_re_force_error": "validation RE force error (eV/Å)", "test_force_mae": "test force MAE (eV/Å)"}


def label(col: str) -> str:
    """A column name as an axis label with units."""
    if col in LABELS:
        return LABELS[col]
    if col in ("params", "n_params", "N", "N_nonembed"):
        return "N (parameters)"
    if "atoms" in col:
        return "D (atoms seen)"
    if "struct" in col:
        return "D (structures seen)"
    return col.replace("_", " ")


def _fit_and_forecast(ax, x, y, lo, hi, color, lab=None):
    """The law drawn solid over the data it fits and dashed where it forecasts."""
    inside = (x >= lo) & (x <= hi)
    ax.plot(x[inside], y[inside], color=color, lw=1, label=lab)
    beyond = np.flatnonzero(x > hi)
    if beyond.size:  # start the dashed part at the last point inside, so the two parts join
        start = max(beyond[0] - 1, 0)
        ax.plot(x[start:], y[start:], color=color, lw=1, ls="--")


def _off_plot_note(ax, name, values, lo, hi):
    """Say, on the axes, that part of an optimum lies outside the window drawn and where."""
    where = "below" if np.all(values < lo) else "above" if np.all(values > hi) else "outside"
    ax.text(0.0, -0.17 - 0.09 * len(ax.texts), f"{name} {where} this window ({values.min():.1g}-{values.max():.1g}):\n"
            "far from every run (fit.json: unpinned)", transform=ax.transAxes, fontsize=7, color="0.3", va="top")


def plot_loss_vs_D(rows, law, path: Path, loss: str, n_col: str, d_col: str) -> str:
    """Loss vs D per model size with the fitted law (solid over the data, dashed just beyond it)."""
    N = np.array([r[n_col] for r in rows], float)
    D = np.array([r[d_col] for r in rows], float)
    L = np.array([r[loss] for r in rows], float)
    sizes = np.unique(N)
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(sizes)))
    fig, ax = plt.subplots(figsize=(6, 4.5))
    dd = np.geomspace(D.min() / 2, D.max() * 4, 100)
    for n, c in zip(sizes, colors):
        m = N == n
        ax.scatter(D[m], L[m], color=c, label=f"N={n:,.0f}")
        _fit_and_forecast(ax, dd, law(n, dd), D.min(), D.max(), c)
    ax.plot([], [], "k--", lw=1, label="forecast (beyond the data)")
    ax.set(xscale="log", yscale="log", xlabel=label(d_col), ylabel=label(loss), title="loss vs data, fitted L(N, D)",
           ylim=(L.min() / 2, L.max() * 2))
    ax.legend(fontsize=8)
    return str(path.parent / save_figure(fig, path))


def plot_all(rows, res, law, out: Path, loss: str, n_col: str, d_col: str) -> list[str]:
    N = np.array([r[n_col] for r in rows], float)
    D = np.array([r[d_col] for r in rows], float)
    L = np.array([r[loss] for r in rows], float)
    C = np.array([r["compute"] for r in rows], float)
    fl, co = res["flops_per_atom"], res["compute_optimal"]
    paths = []

    paths.append(plot_loss_vs_D(rows, law, out / "loss_vs_D.png", loss, n_col, d_col))

    fig, ax = plt.subplots(figsize=(6, 4.5))
    nn = np.geomspace(N.min() / 4, N.max() * 16, 200)
    for c_budget, col in zip(np.geomspace(C.min(), C.max() * 10, 5), plt.cm.plasma(np.linspace(0, 0.85, 5))):
        d = c_budget / (fl["c"] * nn ** fl["gamma"])
        _fit_and_forecast(ax, nn, law(nn, d), N.min(), N.max(), col, f"C={c_budget:.2g} FLOPs")
    sc = ax.scatter(N, L, c=np.log10(C), cmap="plasma", edgecolor="k", s=25)
    fig.colorbar(sc, ax=ax, label="log10 compute of run")
    # N*(C) only where it falls among the sizes drawn: an unpinned N term puts it decades away from any run
    n_opt, l_opt = np.asarray(co["N_opt"], float), np.asarray(co["L_opt"], float)
    near = (n_opt >= nn[0]) & (n_opt <= nn[-1])
    ax.plot(n_opt[near], l_opt[near], "k:", lw=1, label="N*(C)")
    if not near.all():
        _off_plot_note(ax, "N*(C)", n_opt[~near], nn[0], nn[-1])
    ax.set(xscale="log", yscale="log", xlabel=label(n_col), ylabel=label(loss), ylim=(L.min() / 3, L.max() * 3),
           xlim=(nn[0], nn[-1]),
           title="iso-FLOP curves of the fitted law (dashed: forecast)")
    ax.legend(fontsize=7)
    paths.append(str(out / save_figure(fig, out / "isoflop.png")))

    fig, ax = plt.subplots(figsize=(6, 4.5))
    cc = np.asarray(co["C"], float)
    _fit_and_forecast(ax, cc, np.asarray(co["N_opt"], float), C.min(), C.max(), "C0", "N*(C)")
    _fit_and_forecast(ax, cc, np.asarray(co["D_opt"], float), C.min(), C.max(), "C1", "D*(C) (atoms)")
    if co.get("band95"):
        ax.fill_between(co["C"], *co["band95"]["N_opt"], color="C0", alpha=0.2, lw=0, label="95% band (bootstrap)")
        ax.fill_between(co["C"], *co["band95"]["D_opt"], color="C1", alpha=0.2, lw=0)
    ax.scatter(C, N, color="C0", s=12, alpha=0.6, label="runs: N")
    ax.scatter(C, D, color="C1", s=12, alpha=0.6, label="runs: D")
    lo, hi = min(N.min(), D.min()) / 100, max(N.max(), D.max()) * 100  # two decades around the runs
    for name, v in (("N*(C)", co["N_opt"]), ("D*(C)", co["D_opt"])):
        v = np.asarray(v, float)
        if ((v < lo) | (v > hi)).any():
            _off_plot_note(ax, name, v[(v < lo) | (v > hi)], lo, hi)
    ax.set(xscale="log", yscale="log", xlabel="compute (FLOPs)", ylabel="N (parameters), D (atoms)", ylim=(lo, hi),
           title=f"compute-optimal frontier: N*~C^{co['N_exponent']:.2f}, D*~C^{co['D_exponent']:.2f}")
    ax.plot([], [], "k--", lw=1, label="forecast (beyond the runs' compute)")
    ax.legend(fontsize=8)
    paths.append(str(out / save_figure(fig, out / "frontier.png")))
    return paths
