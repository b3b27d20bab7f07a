"""ALFWorld (text mode, on the real ``alfworld`` + ``textworld`` packages) as a harness environment.

Install with ``pip install alfworld`` (it compiles the Fast Downward planner, about 2.5 min). The
games come from the ALFWorld data folder (``$ALFWORLD_DATA``, fetched once with
``alfworld-download``); a small synthetic task set for tests ships in ``synthetic/``. See
``docs/alfworld.md``.
"""
