"""Optimisers of the seeds: functional cores (``functional``) and ``torch.optim`` wrappers.

``build_optimizer(params, cfg)`` builds one from the ``optimizer`` section of a run config;
``OPTIMIZER_PARAMETERS[name]`` lists the keys each accepts. ``configs.OPTIMIZERS`` is the registry
(one dataclass per optimiser: fields, defaults, value rules, how to build it). See ``factory`` for
the config format, ``optimizers`` for ``last_step_stats`` (clipping instrumentation).

Configurations and the factory (:mod:`.configs`, :mod:`.factory`) are torch-free, so that the
workflow validates configs without importing torch (``build_optimizer`` imports it when it
builds); the names below that need torch are imported on first use.
"""

from adamnoise.lazy import lazy_getattr

from .configs import KADAM_STRATEGIES, OPTIMIZERS, OptimizerConfig
from .factory import (
    OPTIMIZER_DEFAULTS,
    OPTIMIZER_PARAMETERS,
    build_optimizer,
    optimizer_config,
    resolve_optimizer_config,
)

# submodule -> the names it defines; imported (with torch) when one is first accessed
_WITH_TORCH = {
    "functional": ("kadam_betas",),
    "optimizers": (
        "Adam",
        "EMASign",
        "InstrumentedOptimizer",
        "KAdam",
        "RMSprop",
        "SGDMomentum",
        "SignSGD",
        "Signum",
    ),
}


__getattr__ = lazy_getattr(__name__, _WITH_TORCH)


__all__ = [
    "KADAM_STRATEGIES",
    "OPTIMIZERS",
    "OPTIMIZER_DEFAULTS",
    "OPTIMIZER_PARAMETERS",
    "Adam",
    "EMASign",
    "InstrumentedOptimizer",
    "KAdam",
    "OptimizerConfig",
    "RMSprop",
    "SGDMomentum",
    "SignSGD",
    "Signum",
    "build_optimizer",
    "kadam_betas",
    "optimizer_config",
    "resolve_optimizer_config",
]
