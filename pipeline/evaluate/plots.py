"""PNG plots for the report: parity, RE error CDFs, NEB profiles model vs reference, NVE energy drift."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def readable_log_y(ax) -> None:
    """Labelled ticks on a log y axis however narrow its range (matplotlib labels only decades): denser
    1-2-5 style steps the fewer decades the axis spans, minor ticks off."""
    from matplotlib import ticker

    lo, hi = ax.get_ylim()
    decades = np.log10(hi / lo)
    subs = ((1.0, 2.0, 5.0) if decades > 2 else (1.0, 1.5, 2.0, 3.0, 5.0, 7.0) if decades > 0.8
            else (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0))
    ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_locator(ticker.NullLocator())


def save_figure(fig, path: Path) -> str:
    """Lay out, write at the reports' resolution, free the figure; returns the file name."""
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # long axis labels are never cut off
    plt.close(fig)
    return path.name


def parity(pairs, out: Path) -> str:
    fr = np.concatenate([s.forces.ravel() for s, _ in pairs if s.forces is not None])
    fp = np.concatenate([p["forces"].ravel() for s, p in pairs if s.forces is not None])
    er = np.array([s.energy / s.n_atoms for s, _ in pairs])
    ep = np.array([p["energy"] / s.n_atoms for s, p in pairs])
    fig, ax = plt.subplots(1, 2, figsize=(9, 4))
    for a, x, y, lab in ((ax[0], er, ep, "energy (eV/atom)"), (ax[1], fr, fp, "force component (eV/Å)")):
        a.scatter(x, y, s=3, alpha=0.5)
        lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        a.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        a.set_xlabel(f"reference {lab}")
        a.set_ylabel(f"predicted {lab}")
    return save_figure(fig, out / "parity.png")


def re_cdf(acc, out: Path, floor_acc=None) -> str:
    fig, ax = plt.subplots(1, 2, figsize=(9, 4))
    for label, a, style in (("model", acc, "-"), ("DFT K1 vs K4", floor_acc, ":")):
        if a is None:
            continue
        for which in ("re", "all"):
            df, th = a.arrays(which)
            if not len(df):
                continue
            for axis, x in ((ax[0], np.abs(df)), (ax[1], th[np.isfinite(th)])):
                x = np.sort(x)
                axis.plot(x, np.arange(1, len(x) + 1) / len(x), style,
                          label=f"{label}, {'RE' if which == 're' else 'all'} atoms")
    ax[0].set_xlabel("|dF| = ||F_pred| - |F_ref|| (eV/Å)")
    ax[1].set_xlabel("angle(F_pred, F_ref) (degree)")
    for a in ax:
        a.set_ylabel("CDF")
        a.legend(fontsize=7)
    return save_figure(fig, out / "re_error_cdf.png")


def neb_profiles(props: dict, out: Path) -> str | None:
    items = [(el, r["vacancy_migration_barrier"]) for el, r in props.items() if "vacancy_migration_barrier" in r]
    if not items:
        return None
    fig, ax = plt.subplots(1, len(items), figsize=(4.5 * len(items), 4), squeeze=False)
    for a, (el, r) in zip(ax[0], items):
        for who, style in (("reference", "k--o"), ("model", "-s")):
            c = r["curves"][who]
            a.plot(c["path"], c["energies"], style, label=f"{who} ({r[who]:.3f} eV)" if r[who] is not None else who)
        a.set_title(f"{el} vacancy hop (CI-NEB)")
        a.set_xlabel("path length (Å)")
        a.set_ylabel("E - E_initial (eV)")
        a.legend()
    return save_figure(fig, out / "neb_profiles.png")


def energy_drift(props: dict, out: Path) -> str | None:
    items = [(el, r["nve_energy_drift"]) for el, r in props.items() if "nve_energy_drift" in r]
    if not items:
        return None
    fig, ax = plt.subplots(figsize=(5, 4))
    for el, r in items:
        for who, style in (("reference", "--"), ("model", "-")):
            c = r["curves"][who]
            ax.plot(c["time_ps"], np.array(c["energy_per_atom"]) * 1000.0, style, label=f"{el} {who}")
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("E_total - E_total(0) (meV/atom)")
    ax.legend()
    return save_figure(fig, out / "energy_drift.png")
