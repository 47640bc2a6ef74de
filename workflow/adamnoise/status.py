"""How a run ended: its status and why it stopped, by name (result files) and code (aggregates).

A result file's attributes carry the names (``status``, ``stop_reason``); an aggregate stores
the codes as CF flag variables (``flag_values`` / ``flag_meanings``), with ``missing`` for a run
that has no result yet. Torch-free.
"""

from __future__ import annotations

COMPLETED, DIVERGED, MISSING = "completed", "diverged", "missing"
# why a run stopped: it passed its minimum (patience), it reached its budget, or it diverged
STOP_PATIENCE, STOP_CAP, STOP_DIVERGED = "patience", "cap", "diverged"

STATUS_CODES = {MISSING: -1, COMPLETED: 0, DIVERGED: 1}
STOP_CODES = {MISSING: -1, STOP_PATIENCE: 0, STOP_CAP: 1, STOP_DIVERGED: 2}

# a run that reached its cap with its best evaluation in this last fraction of its steps may not
# have passed its minimum (Table 1's n_late_best; `adamnoise check-stopping --flagged`)
LATE_FRACTION = 0.1
