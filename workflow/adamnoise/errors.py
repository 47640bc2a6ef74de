"""The one error of a bad config value, on the ground floor (no project imports).

Every config check of the package raises ``ConfigError(key, message)``: ``key`` is the dotted
path of the value at fault (``optimizer.beta1``, ``experiments.sweep.grid.lr``), ``message`` says
what is expected, and ``str(error)`` is ``"<key>: <message>"``. A check that sees only part of a
config (a run config, an optimiser section) names the key from where it stands; its caller places
it in the larger config with ``error.under(prefix)`` (and ``error.renamed(...)`` where a key lives
under another name there). It is a ``ValueError``, so callers that catch those still do.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value that cannot be used: ``key`` (dotted path, "" for the config as a whole)
    and ``message`` (what is expected); ``str()`` is ``"<key>: <message>"``."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)

    def __reduce__(self):  # pickles with both arguments (multiprocessing, Snakemake)
        return type(self), (self.key, self.message)

    def under(self, prefix: str, note: str = "") -> ConfigError:
        """The same error seen from a config that holds this one under ``prefix`` (a dotted
        path; "" leaves the key), with ``note`` appended to the message (e.g. which run)."""
        key = ".".join(part for part in (prefix, self.key) if part)
        message = f"{self.message} ({note})" if note else self.message
        return type(self)(key, message)

    def renamed(self, names: dict[str, str]) -> ConfigError:
        """The same error with a leading part of its key renamed (``{"data.seq_len":
        "seq_len"}``: a run config's key where the experiment config spells it differently)."""
        for old, new in names.items():
            if self.key == old or self.key.startswith(old + "."):
                return type(self)(new + self.key[len(old) :], self.message)
        return self
