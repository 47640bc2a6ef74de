"""adamnoise: how Adam's momentum hyperparameters interact with mini-batch noise.

The package holds everything the Snakemake workflow computes: data preparation, models,
optimisers, the trainer, aggregation of runs into xarray datasets and the theory of the seed
papers. The workflow rules and the notebooks only call into it.
"""

__version__ = "0.1.0"
