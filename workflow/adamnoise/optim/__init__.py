"""Optimisers of the seeds: functional cores (``functional``) and ``torch.optim`` wrappers.

``build_optimizer(params, cfg)`` builds one from the ``optimizer`` section of a run config;
``OPTIMIZER_PARAMETERS[name]`` lists the keys each accepts. See ``factory`` for the config format,
``optimizers`` for ``last_step_stats`` (clipping instrumentation).
"""

from adamnoise.optim.factory import (
    OPTIMIZER_DEFAULTS,
    OPTIMIZER_PARAMETERS,
    build_optimizer,
    resolve_optimizer_config,
)
from adamnoise.optim.functional import KADAM_STRATEGIES, kadam_betas
from adamnoise.optim.optimizers import (
    Adam,
    EMASign,
    InstrumentedOptimizer,
    KAdam,
    RMSprop,
    SGDMomentum,
    SignSGD,
    Signum,
)

__all__ = [
    "KADAM_STRATEGIES",
    "OPTIMIZER_DEFAULTS",
    "OPTIMIZER_PARAMETERS",
    "Adam",
    "EMASign",
    "InstrumentedOptimizer",
    "KAdam",
    "RMSprop",
    "SGDMomentum",
    "SignSGD",
    "Signum",
    "build_optimizer",
    "kadam_betas",
    "resolve_optimizer_config",
]
