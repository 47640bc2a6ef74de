# adamnoise: how Adam's (beta1, beta2) interact with mini-batch noise, measured and held against
# theory. Every computation lives in the package `adamnoise`; the rules only wire the stages.
import os

from snakemake.utils import min_version, validate

from adamnoise.config_schema import coerce_cli_booleans
from adamnoise.figures import config_schema_file
from adamnoise.io import load_yaml

min_version("9.0")

# Snakemake's own message for a YAML syntax error names neither the file nor the line
try:
    if os.path.exists("config/config.yaml"):
        load_yaml("config/config.yaml")
except ValueError as error:
    raise WorkflowError(str(error)) from None


configfile: "config/config.yaml"


# `snakemake --config toy_quadratics=false` passes the string "false" (Snakemake reads only
# True/False as booleans): where the schema wants a boolean, true/false/yes/no/on/off become one
coerce_cli_booleans(config)
# the figure names a config may list are injected from the registry (adamnoise.figures)
with config_schema_file(
    f"{workflow.basedir}/workflow/schemas/config.schema.yaml"
) as schema:
    validate(config, schema)


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/theory.smk"
include: "workflow/rules/toy.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
