"""Report figures stay readable: a narrow log axis still carries several labelled ticks, and a fit's forecast is
drawn apart (dashed) from the part over its data."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from atomforge.pipeline.evaluate.plots import readable_log_y  # noqa: E402
from atomforge.pipeline.sweep.plots import _fit_and_forecast  # noqa: E402


def _labels(ax) -> list[str]:
    ax.figure.canvas.draw()
    lo, hi = ax.get_ylim()
    return [t.get_text() for t in ax.get_yticklabels() if t.get_text() and lo <= t.get_position()[1] <= hi]


def test_narrow_and_wide_log_axes_get_labelled_ticks():
    for lo, hi in ((0.061, 0.13), (0.06, 0.55), (2.0, 80.0), (1e-3, 10.0)):
        fig, ax = plt.subplots()
        ax.plot([1, 2], [lo, hi])
        ax.set_yscale("log")
        before = len(_labels(ax))
        readable_log_y(ax)
        after = _labels(ax)
        assert len(after) >= 3 and len(after) <= 14, (lo, hi, after)
        assert len(after) >= before
        plt.close(fig)


def test_forecast_is_dashed_and_joins_the_fit():
    fig, ax = plt.subplots()
    x = np.geomspace(1, 100, 50)
    _fit_and_forecast(ax, x, 1 / x, 1, 10, "C0", "fit")
    solid, dashed = ax.get_lines()
    assert solid.get_linestyle() == "-" and dashed.get_linestyle() == "--"
    assert solid.get_xdata().max() <= 10 and dashed.get_xdata().min() == solid.get_xdata().max()
    plt.close(fig)
