"""The report's charts: success against cost per episode, and the search lineage tree.

matplotlib is an optional dependency (the ``report`` extra) and is imported only when a chart
is drawn, with the non-interactive Agg backend (no display, thread-safe enough for a session's
end). Charts are rendered to PNG bytes so that the caller writes them atomically and can embed
the same bytes in ``report.html``.
"""

from __future__ import annotations

import importlib.util
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_alma.report import BASELINE, DesignRow, aggregate, metric_name

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 110
#: Statuses drawn without a reward colour, with their marker and grey level.
NO_REWARD_STYLE: dict[str, tuple[str, str]] = {
    "failed": ("X", "0.55"),
    "duplicate": ("D", "0.70"),
}
OTHER_NO_REWARD = ("s", "0.82")  # budget-stopped, pending, seeds without a score
LABEL_CHARS = 28


def matplotlib_available() -> bool:
    """Whether matplotlib can be imported (without importing it)."""
    return importlib.util.find_spec("matplotlib") is not None


def _figure(width: float, height: float) -> Figure:
    # The object-oriented API without pyplot: no global figure registry, no backend switching,
    # nothing left open if drawing fails.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def cost_axis(results: dict[str, Any], rows: Sequence[DesignRow]) -> tuple[str, str]:
    """Which cost goes on the x axis: ``("usd", label)`` or ``("tokens", label)``.

    Dollars when every design's cost is known and some are above zero; otherwise tokens, with
    the reason in the label (a test-double run, unknown prices, or free models).
    """
    costs = [r.cost_per_episode for r in rows]
    if results.get("test_double"):
        return "tokens", "tokens per episode (no dollars: scripted test double)"
    if any(c is None for c in costs):
        return "tokens", "tokens per episode (dollars unknown: a model has no price)"
    if not any(c for c in costs if c):
        return "tokens", "tokens per episode (dollar cost is zero)"
    return "usd", "dollars per episode"


def _bubble_area(chars: float, largest: float) -> float:
    # Area (points^2) proportional to the retrieved memory, with a floor so that No Memory
    # (0 characters) is still a visible dot.
    return 40.0 + 900.0 * (chars / largest if largest > 0 else 0.0)


def success_vs_cost_png(
    results: dict[str, Any], rows: list[DesignRow] | None = None
) -> bytes | None:
    """The paper's chart: success against cost per episode, one panel per environment.

    One bubble per design, its area proportional to the mean retrieved memory (characters),
    with the 95% interval (the task as the unit) as an error bar; a design without episodes (a
    failed memory build) has no bubble. ``None`` when the run has no deployment episodes.
    ``rows`` are :func:`~pytest_alma.report.aggregate`'s, when the caller has them already.
    """
    rows = aggregate(results) if rows is None else rows
    if not rows:
        return None
    envs = sorted({r.env for r in rows})
    designs = sorted({r.design for r in rows}, key=lambda d: (d != BASELINE, d))
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    palette = colormaps["tab10"]
    colour = {d: palette(i % 10) for i, d in enumerate(designs)}
    mode, x_label = cost_axis(results, rows)
    largest = max(r.memory_chars for r in rows)
    fig = _figure(max(6.0, 5.6 * len(envs)), 5.2)
    FigureCanvasAgg(fig)  # a renderer, to measure the labels before placing them
    axes = fig.subplots(1, len(envs), squeeze=False, sharey=True)[0]
    labels: list[tuple[Any, float, float, str, float]] = []
    for ax, env in zip(axes, envs, strict=True):
        env_rows = [r for r in rows if r.env == env]
        for r in env_rows:
            x = r.cost_per_episode if mode == "usd" else r.tokens_per_episode
            y = 100 * r.score.mean
            if x is None or math.isnan(y):
                continue
            if not (math.isnan(r.score.low) or math.isnan(r.score.high)):
                ax.errorbar(
                    x,
                    y,
                    yerr=[[y - 100 * r.score.low], [100 * r.score.high - y]],
                    color=colour[r.design],
                    alpha=0.45,
                    capsize=3,
                    linewidth=1,
                    zorder=1,
                )
            ax.scatter(
                [x],
                [y],
                s=_bubble_area(r.memory_chars, largest),
                color=colour[r.design],
                alpha=0.75,
                edgecolors="black" if r.design == BASELINE else "white",
                linewidths=1.6 if r.design == BASELINE else 0.8,
                zorder=2,
            )
            labels.append((ax, x, y, r.design, _bubble_area(r.memory_chars, largest)))
        metric = metric_name(env)
        tasks = max(r.tasks for r in env_rows)
        repeats = max(r.repeats[1] for r in env_rows)
        ax.set_title(f"{env} ({metric}, {tasks} tasks x {repeats} repeats per design)")
        ax.set_xlabel(x_label)
        if ax is axes[0] or len({metric_name(e) for e in envs}) > 1:
            ax.set_ylabel(f"{metric} % (95% interval)")
        ax.set_ylim(-5, 105)
        ax.margins(x=0.25)
        ax.grid(True, alpha=0.3)
    # Bubble sizes explained once, in the last panel, with three reference bubbles.
    for chars in sorted({0.0, round(largest / 2), float(round(largest))}):
        axes[-1].scatter([], [], s=_bubble_area(chars, largest), color="0.75", label=f"{chars:.0f}")
    axes[-1].legend(
        title="retrieved memory (chars)",
        loc="upper right",
        fontsize=8,
        title_fontsize=8,
        labelspacing=2.0,
        borderpad=1.1,
        handlelength=3.0,
        handletextpad=1.4,
        frameon=True,
    )
    title = f"Success vs cost per episode, run {results.get('run_id')}"
    if results.get("test_double"):
        title += "\nSCRIPTED TEST DOUBLE: these numbers test the plumbing, not an LLM"
    fig.suptitle(title, color="darkred" if results.get("test_double") else "black")
    _place_labels(fig, labels)
    return _png(fig)


#: Where a label may go relative to its bubble, tried in this order: to the right of the bubble's
#: edge, further and further up or down (points), then the same on its left.
LABEL_SIDES = (1, -1)
LABEL_RISES = (4, -12, 16, -24, 28, -36, 40, -48, 52, -60)


def _place_labels(fig: Figure, labels: list[tuple[Any, float, float, str, float]]) -> None:
    """Name each bubble where the name overlaps no bubble, no legend and no name placed before,
    inside its panel.

    Designs with similar scores and costs sit on top of each other (with the test double
    they often have the very same score), so fixed offsets would print names over names.
    ``labels`` are (axes, x, y, name, bubble area in points^2).
    """
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    fig.canvas.draw()  # the final layout, so that every extent is in its final pixels
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    px_per_pt = fig.dpi / 72.0
    obstacles: list[Any] = []
    for ax, x, y, _, area in labels:
        cx, cy = ax.transData.transform((x, y))
        r = math.sqrt(area) / 2 * px_per_pt
        obstacles.append(Bbox.from_bounds(cx - r, cy - r, 2 * r, 2 * r))
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            obstacles.append(legend.get_window_extent(renderer))
    for ax, x, y, name, area in sorted(labels, key=lambda item: (id(item[0]), item[1], item[2])):
        frame = ax.get_window_extent(renderer)
        gap = math.sqrt(area) / 2 + 3  # points from the centre to just past the bubble's edge
        candidates = [(side * gap, rise) for side in LABEL_SIDES for rise in LABEL_RISES]
        chosen: tuple[float, float, Bbox | None] | None = None
        fallback: tuple[float, float, Bbox | None] | None = None
        for dx, dy in candidates:
            probe = ax.annotate(
                name,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                ha="left" if dx > 0 else "right",
                va="center",
                fontsize=8,
            )
            # The label's own box (an annotation's extent would include a leader line).
            probe.update_positions(renderer)
            box = Text.get_window_extent(probe, renderer)
            probe.remove()
            inside = (
                frame.x0 <= box.x0
                and box.x1 <= frame.x1
                and frame.y0 <= box.y0
                and box.y1 <= frame.y1
            )
            if inside and fallback is None:
                fallback = (dx, dy, box)
            if inside and not any(box.overlaps(other) for other in obstacles):
                chosen = (dx, dy, box)
                break
        at_x, at_y, taken = chosen or fallback or (candidates[0][0], candidates[0][1], None)
        text = ax.annotate(
            name,
            (x, y),
            xytext=(at_x, at_y),
            textcoords="offset points",
            ha="left" if at_x > 0 else "right",
            va="center",
            fontsize=8,
            zorder=3,
            # A thin leader line once the label has moved away from its bubble.
            arrowprops=(
                {"arrowstyle": "-", "color": "0.55", "lw": 0.6}
                if abs(at_y) > LABEL_RISES[0]
                else None
            ),
        )
        text.set_in_layout(False)  # labels must not move the axes they were measured in
        if taken is not None:
            obstacles.append(taken)


# -- lineage -----------------------------------------------------------------------------------


def lineage_layout(nodes: Sequence[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Positions of a search lineage: x is the generation, y the row of a tidy tree.

    Each leaf gets the next row in depth-first order (children by generation, then id); a
    parent sits at the mean row of its children. A node whose parent is unknown, or whose
    parent chain loops, is drawn as a root, so malformed input still gives a picture.
    """
    ids = [str(n["id"]) for n in nodes]
    known = set(ids)
    generation = {str(n["id"]): int(n.get("generation") or 0) for n in nodes}
    parent: dict[str, str | None] = {}
    for n in nodes:
        p = n.get("parent")
        parent[str(n["id"])] = str(p) if p is not None and str(p) in known else None
    # Break loops in the parent chains: the first node met again on its own chain is a root.
    for start in ids:
        seen: set[str] = set()
        node: str | None = start
        while node is not None:
            if node in seen:
                parent[node] = None
                break
            seen.add(node)
            node = parent[node]
    children: dict[str, list[str]] = {i: [] for i in ids}
    for i in ids:
        p = parent[i]
        if p is not None:
            children[p].append(i)
    order = {i: k for k, i in enumerate(ids)}
    for kids in children.values():
        kids.sort(key=lambda c: (generation[c], order[c]))
    roots = sorted((i for i in ids if parent[i] is None), key=lambda r: (generation[r], order[r]))
    rows: dict[str, float] = {}
    next_row = 0.0
    # Iterative post-order (a long chain of generations must not hit the recursion limit).
    for root in roots:
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            node_id, expanded = stack.pop()
            kids = children[node_id]
            if not kids:
                rows[node_id] = next_row
                next_row += 1
            elif expanded:
                rows[node_id] = sum(rows[k] for k in kids) / len(kids)
            else:
                stack.append((node_id, True))
                stack.extend((k, False) for k in reversed(kids))
    return {i: (float(generation[i]), rows[i]) for i in ids}


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def lineage_png(nodes: Sequence[dict[str, Any]]) -> bytes:
    """The search lineage as a PNG (see :func:`plot_lineage`)."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    pos = lineage_layout(nodes)
    by_id = {str(n["id"]): n for n in nodes}
    generations = max((x for x, _ in pos.values()), default=0.0)
    leaves = max((y for _, y in pos.values()), default=0.0) + 1
    fig = _figure(min(40.0, 3.0 + 2.4 * (generations + 1)), min(60.0, 1.6 + 0.38 * leaves))
    ax = fig.subplots()
    for node_id, (x, y) in pos.items():
        p = by_id[node_id].get("parent")
        if p is not None and str(p) in pos:
            px, py = pos[str(p)]
            # An elbow: across from the parent, then down to the child's row.
            mid = (px + x) / 2
            ax.plot([px, mid, mid, x], [py, py, y, y], color="0.6", linewidth=0.9, zorder=1)
    rewards = [float(n["reward"]) for n in nodes if n.get("reward") is not None]
    cmap = colormaps["viridis"]
    low, high = min(rewards, default=0.0), max(rewards, default=1.0)
    if low == high:  # one reward (or all equal): a colour scale around it
        low, high = low - 0.5, high + 0.5
    norm = Normalize(vmin=low, vmax=high)
    scored = [n for n in nodes if n.get("reward") is not None]
    if scored:
        points = ax.scatter(
            [pos[str(n["id"])][0] for n in scored],
            [pos[str(n["id"])][1] for n in scored],
            c=[float(n["reward"]) for n in scored],
            cmap=cmap,
            norm=norm,
            s=140,
            edgecolors=["black" if n.get("status") == "seed" else "white" for n in scored],
            linewidths=1.2,
            zorder=2,
        )
        fig.colorbar(points, ax=ax, label="reward", shrink=0.8)
    unscored = [n for n in nodes if n.get("reward") is None]
    for n in unscored:
        marker, grey = NO_REWARD_STYLE.get(str(n.get("status")), OTHER_NO_REWARD)
        x, y = pos[str(n["id"])]
        ax.scatter([x], [y], marker=marker, s=110, color=grey, edgecolors="0.3", zorder=2)
    best = max(scored, key=lambda n: float(n["reward"]), default=None)
    for n in nodes:
        x, y = pos[str(n["id"])]
        status = str(n.get("status"))
        label = _short(str(n.get("name") or n["id"]))
        if n.get("reward") is not None:
            label += f" {float(n['reward']):.3g}"
        elif status not in ("written", "evaluated", "seed"):
            label += f" ({status})"
        ax.annotate(
            label,
            (x, y),
            # Above the node, on a white ground: the edges run along the nodes' rows.
            xytext=(0, 9),
            textcoords="offset points",
            ha="center",
            fontsize=8,
            fontweight="bold" if n is best else "normal",
            color="0.4" if n.get("reward") is None else "black",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
            zorder=3,
        )
    handles = [
        Line2D([], [], marker="o", linestyle="", color=cmap(0.6), label="scored (colour: reward)"),
        Line2D(
            [], [], marker="o", linestyle="", color=cmap(0.6), markeredgecolor="black", label="seed"
        ),
        *[
            Line2D([], [], marker=m, linestyle="", color=g, markeredgecolor="0.3", label=status)
            for status, (m, g) in NO_REWARD_STYLE.items()
        ],
        Line2D(
            [],
            [],
            marker=OTHER_NO_REWARD[0],
            linestyle="",
            color=OTHER_NO_REWARD[1],
            markeredgecolor="0.3",
            label="no reward (budget, pending)",
        ),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=5, fontsize=8)
    ax.set_xlabel("generation")
    ax.set_xticks(range(int(generations) + 1))
    ax.set_xlim(-0.6, generations + 0.6)  # room for the centred labels at both ends
    ax.set_ylim(leaves - 0.4, -0.8)  # first row at the top, with room for its labels
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title(f"Search lineage: {len(nodes)} candidates")
    return _png(fig)


def plot_lineage(nodes: list[dict[str, Any]], path: Path) -> None:
    """Draw a search lineage to ``path`` (PNG, written atomically).

    ``nodes`` are ``{"id", "name", "parent", "generation", "status", "reward"}``: generation on
    the x axis, edges from parent to child, scored nodes coloured by reward (with a colour
    bar), failed and duplicate candidates in grey with their own markers, names as labels.
    """
    from pytest_alma.store import atomic_write_bytes

    atomic_write_bytes(path, lineage_png(nodes))
