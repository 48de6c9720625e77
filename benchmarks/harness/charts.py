"""One bar chart per scenario: a panel per variant, django-ws in green."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .common import log
from .scenarios import SCENARIOS
from .summary import fmt, summarize


def _color(name: str) -> str:
    if name.startswith("djangows") and name != "djangows102":
        return "#2e7d32"
    return "#9e9e9e" if name.startswith("raw") else "#1565c0"


def chart(name: str, data: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        log(
            f"matplotlib is not installed: no chart for {name} (run benchmarks/setup.sh)"
        )
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenario = SCENARIOS[name]
    variants = list(data["variants"].items())
    if not variants:
        return
    better = "higher" if scenario.higher_is_better else "lower"
    rows = [("median", f"{scenario.unit} ({better} is better)")]
    if name in ("pingpong", "churn"):
        rows.append(("per_cpu_s", "per server CPU-second (higher is better)"))
    fig, axes = plt.subplots(
        len(rows),
        len(variants),
        figsize=(5.2 * len(variants), 3.4 * len(rows)),
        squeeze=False,
    )
    for row, (key, label) in enumerate(rows):
        for ax, (variant, targets) in zip(axes[row], variants):
            names = list(targets)
            values = [summarize(targets[t]).get(key, 0.0) for t in names]
            colors = [_color(t) for t in names]
            bars = ax.barh(names[::-1], values[::-1], color=colors[::-1])
            for bar, value in zip(bars, values[::-1]):
                ax.text(
                    bar.get_width(),
                    bar.get_y() + bar.get_height() / 2,
                    " " + fmt(value),
                    va="center",
                    fontsize=8,
                )
            ax.set_title(variant, fontsize=10)
            ax.set_xlabel(label, fontsize=8)
            ax.tick_params(labelsize=8)
            top = max(values) if values else 0
            ax.set_xlim(0, top * 1.25 if top > 0 else 1)
    fig.suptitle(scenario.title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
