"""Test tiers: ``make test`` runs everything (CI); ``make test-fast`` leaves out the tests marked
``slow`` (whole Snakemake DAGs, real training runs) and ``slurm`` (the single-node cluster)."""

from __future__ import annotations

import pytest

# a test that uses one of these fixtures runs the whole workflow: it is slow by construction
SLOW_FIXTURES = {"workflow_run"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
