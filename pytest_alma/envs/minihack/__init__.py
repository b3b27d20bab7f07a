"""MiniHack (on ``minihack`` + ``nle``, gymnasium API) as a harness environment.

Install with ``pip install -e '.[minihack]'``. See ``docs/minihack.md``.
"""
