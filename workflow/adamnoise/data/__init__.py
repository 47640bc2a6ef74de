"""Data stage: verified downloads (``download``) and corpus preparation (``corpus``).

``adamnoise.data.corpus.load_prepared(path)`` is what the trainer uses; ``adamnoise data ...``
(``cli``) is the command line. Submodules are imported on use so that the CLI starts fast.
"""
