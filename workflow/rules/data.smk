# Data stage: corpora in the prepared-corpus format (docs/architecture.md).


rule prepare_offline_corpus:
    """Real English prose shipped with Python (pydoc_data): needs no network."""
    output:
        multiext(ex.corpus_dir(RESULTS, "{corpus}") + "/", *CORPUS_FILES),
    log:
        f"{RESULTS}/logs/data/{{corpus}}.log",
    wildcard_constraints:
        corpus="|".join(corpus.OFFLINE_CORPORA),
    conda:
        CONDA_ENV
    params:
        out_dir=lambda wildcards, output: Path(output[0]).parent,
    shell:
        "adamnoise data prepare {wildcards.corpus:q} --out {params.out_dir:q} > {log:q} 2>&1"


rule download_wikitext2:
    """WikiText-2 (Merity et al.) from the first mirror that answers, verified by sha256."""
    output:
        f"{RESOURCES_DIR}/wikitext-2-v1.zip",
    log:
        f"{RESULTS}/logs/data/download_wikitext2.log",
    retries: 2
    conda:
        CONDA_ENV
    params:
        # a list: `:q` quotes every element, so a URL never reaches the shell as code
        mirrors=[
            part
            for url in config.get("wikitext2_mirrors", [])
            for part in ("--mirror", url)
        ],
    shell:
        "adamnoise data download wikitext2 --out {output:q} {params.mirrors:q} > {log:q} 2>&1"


rule prepare_wikitext2:
    """Seed 000's word-level token stream, with its statistics next to the published ones."""
    input:
        rules.download_wikitext2.output,
    output:
        multiext(ex.corpus_dir(RESULTS, "wikitext2") + "/", *CORPUS_FILES),
    log:
        f"{RESULTS}/logs/data/prepare_wikitext2.log",
    conda:
        CONDA_ENV
    params:
        out_dir=lambda wildcards, output: Path(output[0]).parent,
    shell:
        "adamnoise data prepare wikitext2 --archive {input:q} --out {params.out_dir:q} > {log:q} 2>&1"
