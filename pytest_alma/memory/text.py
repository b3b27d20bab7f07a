"""Readable, bounded text forms of tasks and trajectories, for prompts and retrieved memory."""

from __future__ import annotations

from pytest_alma.records import TaskStart, Trajectory


def clip(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars``, with the cut marked so that a reader knows."""
    if len(text) <= max_chars:
        return text
    marker = " [...]"
    return text[: max(0, max_chars - len(marker))] + marker


def task_text(start: TaskStart, max_chars: int = 2000) -> str:
    """The goal and the first observation of a task: what a design may key memory on."""
    goal = f"Goal: {start.goal}\n" if start.goal else ""
    return clip(f"{goal}Observation: {start.observation}", max_chars)


def trajectory_text(
    trajectory: Trajectory, max_chars: int = 4000, observation_chars: int = 300
) -> str:
    """A whole episode as text: the task, each action with its (clipped) observation, the outcome.

    Long episodes keep their start and their end (where the outcome was decided) and drop the
    middle, marked, to stay within ``max_chars``.
    """
    head = task_text(trajectory.start, max_chars // 3)
    outcome = (
        f"Outcome: {'success' if trajectory.success else 'failure'} "
        f"(score {trajectory.score:g}, {len(trajectory.steps)} steps)"
    )
    lines = [
        f"{i}. {step.action} -> {clip(' '.join(step.observation.split()), observation_chars)}"
        for i, step in enumerate(trajectory.steps, 1)
    ]
    budget = max_chars - len(head) - len(outcome) - 2
    body = "\n".join(lines)
    if len(body) > budget and lines:
        kept_head: list[str] = []
        kept_tail: list[str] = []
        used = len("[... steps omitted ...]") + 2
        for first, last in zip(lines, reversed(lines), strict=False):
            if used + len(first) + len(last) + 2 > budget or len(kept_head) + len(kept_tail) >= len(
                lines
            ):
                break
            kept_head.append(first)
            kept_tail.insert(0, last)
            used += len(first) + len(last) + 2
        body = "\n".join([*kept_head, "[... steps omitted ...]", *kept_tail])
    return f"{head}\n{body}\n{outcome}"
