"""The synthetic ALFWorld test tasks: their definitions and the script that writes them.

These are **test fixtures, not the benchmark**: a handful of small rooms written by us in the
ALFRED PDDL domain, so that the real alfworld/textworld loading and stepping code can be
exercised offline (the real games come from ``alfworld-download``). Each task is written the
way ALFWorld's data is laid out::

    synthetic/json_2.1.1/<split folder>/<task type>-<Obj>-<Mrecep>-<Recep>-<scene>/<trial>/
        traj_data.json      task_type and pddl_params (what alfworld's loader reads)
        initial_state.pddl  the PDDL problem
        game.tw-pddl        JSON: pddl_domain + grammar (alfworld's, goal filled in) + problem,
                            solvable, walkthrough

``game.tw-pddl`` holds the same dictionary alfworld's ``AlfredTWEnv`` writes for a trial that
has no game file yet; the goal text is the first of alfworld's templates for the task type (the
real data picks one at random). Object ids are mangled the way ALFRED's are
(``Mug_bar__plus_01_dot_00_...``) so that alfworld's ``Demangler`` names them "mug 1".

Regenerate the shipped files with ``python -m pytest_alma.envs.alfworld.synthetic_build`` (needs
alfworld installed, for its domain and grammar files); a test checks they are up to date.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_alma.envs.alfworld.data import GAME_FILE, JSON_FOLDER, synthetic_data_root

#: Types the ALFRED domain names in its action preconditions: every problem declares them.
_DOMAIN_OTYPES = ("SinkType", "KnifeType", "ButterKnifeType")
_DOMAIN_RTYPES = ("SinkBasinType", "MicrowaveType", "FridgeType")

#: Goal formulas per task type, as in alfworld's ``gen/goal_library.py`` (0.4.2).
_GOALS: dict[str, str] = {
    "pick_and_place_simple": """(exists (?r - receptacle)
                (exists (?o - object)
                    (and
                        (inReceptacle ?o ?r)
                        (objectType ?o {obj}Type)
                        (receptacleType ?r {recep}Type))))""",
    "look_at_obj_in_light": """(exists (?ot - object ?r - receptacle ?a - agent ?l - location)
                (and
                    (objectType ?ot {toggle}Type)
                    (toggleable ?ot)
                    (isToggled ?ot)
                    (receptacleAtLocation ?r ?l)
                    (atLocation ?a ?l)
                    (inReceptacle ?ot ?r)))
            (exists (?o - object ?a - agent)
                (and
                    (objectType ?o {obj}Type)
                    (holds ?a ?o)))""",
}
for _kind, _pred, _able in (
    ("clean", "isClean", "cleanable"),
    ("heat", "isHot", "heatable"),
    ("cool", "isCool", "coolable"),
):
    _GOALS[f"pick_{_kind}_then_place_in_recep"] = f"""(exists (?r - receptacle)
                (exists (?o - object)
                    (and
                        ({_able} ?o)
                        (objectType ?o {{obj}}Type)
                        (receptacleType ?r {{recep}}Type)
                        ({_pred} ?o)
                        (inReceptacle ?o ?r))))"""

#: Goal text per task type: the first of alfworld's templates for it.
_GOAL_TEXT: dict[str, str] = {
    "pick_and_place_simple": "put a {obj} in {recep}",
    "look_at_obj_in_light": "look at {obj} under the {toggle}",
    "pick_clean_then_place_in_recep": "put a clean {obj} in {recep}",
    "pick_heat_then_place_in_recep": "put a hot {obj} in {recep}",
    "pick_cool_then_place_in_recep": "put a cool {obj} in {recep}",
}


@dataclass(frozen=True)
class Thing:
    """An object: its ALFRED type, the receptacle key it starts in and its properties."""

    kind: str
    inside: str
    props: tuple[str, ...] = ("pickupable",)


@dataclass(frozen=True)
class SyntheticTask:
    """One synthetic trial: the room, the goal parameters and a winning command sequence."""

    split: str  # ALFWorld split folder: train, valid_seen or valid_unseen
    task_type: str
    scene: int
    obj: str
    recep: str
    receptacles: dict[str, str]  # key -> ALFRED receptacle type (e.g. "drawer1": "Drawer")
    things: dict[str, Thing]
    walkthrough: tuple[str, ...]
    toggle: str = ""
    openable: tuple[str, ...] = ()  # receptacle keys that must be opened
    trial: str = "trial_T00000000_000000_000001"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> str:
        """The task folder name, ALFWorld-style: type-Obj-Mrecep-Recep-scene."""
        return f"{self.task_type}-{self.obj}-None-{self.recep or self.toggle}-{self.scene}"

    @property
    def task_id(self) -> str:
        """The harness task id (see :mod:`pytest_alma.envs.alfworld.tasks`)."""
        return f"{self.split}/{self.folder}/{self.trial}"

    @property
    def goal_text(self) -> str:
        """The task description, as it appears after "Your task is to: "."""
        return _GOAL_TEXT[self.task_type].format(
            obj=self.obj.lower(), recep=self.recep.lower(), toggle=self.toggle.lower()
        )


_BEDROOM = {"bed1": "Bed", "desk1": "Desk", "drawer1": "Drawer", "sidetable1": "SideTable"}
_KITCHEN = {
    "countertop1": "CounterTop",
    "cabinet1": "Cabinet",
    "sinkbasin1": "SinkBasin",
    "microwave1": "Microwave",
    "fridge1": "Fridge",
    "diningtable1": "DiningTable",
}

#: The synthetic task set (scenes 9xx so that they never collide with ALFRED's scene numbers).
SYNTHETIC_TASKS: tuple[SyntheticTask, ...] = (
    SyntheticTask(
        split="train",
        task_type="pick_and_place_simple",
        scene=901,
        obj="CellPhone",
        recep="Bed",
        receptacles=_BEDROOM,
        openable=("drawer1",),
        things={
            "cellphone1": Thing("CellPhone", "drawer1"),
            "book1": Thing("Book", "desk1"),
            "pen1": Thing("Pen", "desk1"),
            "desklamp1": Thing("DeskLamp", "sidetable1", ("toggleable",)),
        },
        walkthrough=(
            "go to drawer 1",
            "open drawer 1",
            "take cellphone 1 from drawer 1",
            "go to bed 1",
            "move cellphone 1 to bed 1",
        ),
    ),
    SyntheticTask(
        split="train",
        task_type="pick_heat_then_place_in_recep",
        scene=902,
        obj="Potato",
        recep="CounterTop",
        receptacles=_KITCHEN,
        openable=("cabinet1", "microwave1", "fridge1"),
        things={
            "potato1": Thing("Potato", "fridge1", ("pickupable", "heatable", "coolable")),
            "plate1": Thing("Plate", "cabinet1", ("pickupable", "cleanable", "coolable")),
            "apple1": Thing("Apple", "diningtable1", ("pickupable", "heatable", "coolable")),
        },
        walkthrough=(
            "go to fridge 1",
            "open fridge 1",
            "take potato 1 from fridge 1",
            "go to microwave 1",
            "heat potato 1 with microwave 1",
            "go to countertop 1",
            "move potato 1 to countertop 1",
        ),
    ),
    SyntheticTask(
        split="valid_seen",
        task_type="look_at_obj_in_light",
        scene=903,
        obj="Book",
        recep="",
        toggle="DeskLamp",
        receptacles=_BEDROOM,
        openable=("drawer1",),
        things={
            "book1": Thing("Book", "bed1"),
            "pen1": Thing("Pen", "desk1"),
            "cellphone1": Thing("CellPhone", "drawer1"),
            "desklamp1": Thing("DeskLamp", "sidetable1", ("toggleable",)),
        },
        walkthrough=(
            "go to bed 1",
            "take book 1 from bed 1",
            "go to sidetable 1",
            "use desklamp 1",
        ),
    ),
    SyntheticTask(
        split="valid_seen",
        task_type="pick_clean_then_place_in_recep",
        scene=904,
        obj="Plate",
        recep="Cabinet",
        receptacles=_KITCHEN,
        openable=("cabinet1", "microwave1", "fridge1"),
        things={
            "plate1": Thing("Plate", "diningtable1", ("pickupable", "cleanable", "coolable")),
            "apple1": Thing("Apple", "countertop1", ("pickupable", "heatable", "coolable")),
        },
        walkthrough=(
            "go to diningtable 1",
            "take plate 1 from diningtable 1",
            "go to sinkbasin 1",
            "clean plate 1 with sinkbasin 1",
            "go to cabinet 1",
            "open cabinet 1",
            "move plate 1 to cabinet 1",
        ),
    ),
    SyntheticTask(
        split="valid_unseen",
        task_type="pick_cool_then_place_in_recep",
        scene=905,
        obj="Apple",
        recep="DiningTable",
        receptacles=_KITCHEN,
        openable=("cabinet1", "microwave1", "fridge1"),
        things={
            "apple1": Thing("Apple", "countertop1", ("pickupable", "heatable", "coolable")),
            "potato1": Thing("Potato", "cabinet1", ("pickupable", "heatable", "coolable")),
        },
        walkthrough=(
            "go to countertop 1",
            "take apple 1 from countertop 1",
            "go to fridge 1",
            "cool apple 1 with fridge 1",
            "go to diningtable 1",
            "move apple 1 to diningtable 1",
        ),
    ),
    SyntheticTask(
        split="valid_unseen",
        task_type="pick_and_place_simple",
        scene=906,
        obj="Pen",
        recep="Drawer",
        receptacles=_BEDROOM,
        openable=("drawer1",),
        things={
            "pen1": Thing("Pen", "desk1"),
            "book1": Thing("Book", "bed1"),
            "desklamp1": Thing("DeskLamp", "sidetable1", ("toggleable",)),
        },
        walkthrough=(
            "go to desk 1",
            "take pen 1 from desk 1",
            "go to drawer 1",
            "open drawer 1",
            "move pen 1 to drawer 1",
        ),
    ),
)


def _mangle(kind: str, number: int) -> str:
    # ALFRED ids are "<Type>|<x>|<y>|<z>" with | + - . spelled out; sink basins add "|SinkBasin".
    position = f"_bar__plus_{number:02d}_dot_00_bar__plus_00_dot_00_bar__plus_00_dot_00"
    if kind == "SinkBasin":
        return f"Sink{position}_bar_SinkBasin"
    return f"{kind}{position}"


def problem_pddl(task: SyntheticTask) -> str:
    """The PDDL problem of a synthetic task (ALFRED domain)."""
    rec_ids = {key: _mangle(kind, i + 1) for i, (key, kind) in enumerate(task.receptacles.items())}
    obj_ids = {key: _mangle(t.kind, i + 1) for i, (key, t) in enumerate(task.things.items())}
    locs = {key: f"loc_bar_{i + 1}_bar_0_bar_0_bar_0" for i, key in enumerate(task.receptacles)}
    start = "loc_bar_0_bar_0_bar_0_bar_0"
    otypes = sorted({t.kind + "Type" for t in task.things.values()} | set(_DOMAIN_OTYPES))
    rtypes = sorted({k + "Type" for k in task.receptacles.values()} | set(_DOMAIN_RTYPES))
    objects = ["agent1 - agent"]
    objects += [f"{t} - otype" for t in otypes] + [f"{t} - rtype" for t in rtypes]
    objects += [f"{o} - object" for o in obj_ids.values()]
    objects += [f"{r} - receptacle" for r in rec_ids.values()]
    objects += [f"{loc} - location" for loc in (start, *locs.values())]
    init = [f"(atLocation agent1 {start})"]
    for key, kind in task.receptacles.items():
        init.append(f"(receptacleType {rec_ids[key]} {kind}Type)")
        init.append(f"(receptacleAtLocation {rec_ids[key]} {locs[key]})")
        if key in task.openable:
            init.append(f"(openable {rec_ids[key]})")
        # Every receptacle may hold every object here (ALFRED restricts this per type).
        for t in sorted({t.kind for t in task.things.values()}):
            init.append(f"(canContain {kind}Type {t}Type)")
    for key, thing in task.things.items():
        oid = obj_ids[key]
        init.append(f"(objectType {oid} {thing.kind}Type)")
        init.append(f"(inReceptacle {oid} {rec_ids[thing.inside]})")
        init.append(f"(objectAtLocation {oid} {locs[thing.inside]})")
        init.extend(f"({prop} {oid})" for prop in thing.props)
    goal = _GOALS[task.task_type].format(obj=task.obj, recep=task.recep, toggle=task.toggle)
    nl = "\n        "
    return f"""(define (problem synthetic_{task.scene})
    (:domain alfred)
    (:objects
        {nl.join(objects)}
    )
    (:init
        {nl.join(init)}
    )
    (:goal
        (and
            {goal}
        )
    )
)
"""


def traj_data(task: SyntheticTask) -> dict[str, Any]:
    """The ``traj_data.json`` of a synthetic task (the keys alfworld's text mode reads)."""
    return {
        "task_type": task.task_type,
        "pddl_params": {
            "object_target": task.obj,
            "parent_target": task.recep,
            "toggle_target": task.toggle,
            "mrecep_target": "",
            "object_sliced": False,
        },
        "synthetic": True,
        "note": "pytest-alma synthetic test fixture, not an ALFWorld benchmark task",
    }


def game_data(task: SyntheticTask, domain: str, grammar: str) -> dict[str, Any]:
    """The ``game.tw-pddl`` dictionary (as alfworld's AlfredTWEnv writes it)."""
    return {
        "pddl_domain": domain,
        "grammar": grammar.replace("UNKNOWN GOAL", task.goal_text),
        "pddl_problem": problem_pddl(task),
        "solvable": True,
        "walkthrough": list(task.walkthrough),
    }


def alfworld_logic() -> tuple[str, str]:
    """alfworld's ALFRED domain and grammar text (from the installed package)."""
    # Located without importing alfworld, whose import creates the data folder as a side effect.
    spec = importlib.util.find_spec("alfworld")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "building the synthetic tasks needs alfworld: pip install alfworld"
        )
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    domain = (data / "alfred.pddl").read_text(encoding="utf-8")
    grammar = (data / "alfred.twl2").read_text(encoding="utf-8")
    return domain, grammar


def write_task(task: SyntheticTask, root: Path, domain: str, grammar: str) -> Path:
    """Write one task's trial folder under data folder ``root``; return the folder."""
    folder = root / JSON_FOLDER / task.split / task.folder / task.trial
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "traj_data.json").write_text(json.dumps(traj_data(task), indent=2) + "\n")
    (folder / "initial_state.pddl").write_text(problem_pddl(task))
    (folder / GAME_FILE).write_text(json.dumps(game_data(task, domain, grammar), indent=1) + "\n")
    return folder


def build(root: Path | None = None) -> list[Path]:
    """Write every synthetic task under ``root`` (default: the shipped ``synthetic/`` folder)."""
    target = root or synthetic_data_root()
    domain, grammar = alfworld_logic()
    return [write_task(task, target, domain, grammar) for task in SYNTHETIC_TASKS]


if __name__ == "__main__":
    for path in build():
        print(path)
