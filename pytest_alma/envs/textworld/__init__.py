"""TextWorld (treasure hunter, the cooking game, coin collector) as a harness environment.

Games are generated locally with TextWorld's own challenge generators and cached on disk
(:mod:`pytest_alma.envs.textworld.generate`). Install with ``pip install -e '.[textworld]'``.
See ``docs/textworld.md``.
"""
