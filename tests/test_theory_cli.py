"""``adamnoise theory lemmas | grid`` and ``adamnoise recommend``: in process, and once as a
subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from adamnoise.cli import main
from adamnoise.theory import implicit_bias as ib
from adamnoise.theory import lemmas as lm

REPO = Path(__file__).resolve().parents[1]


def test_lemmas_table(capsys):
    assert main(["theory", "lemmas"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["lemma", "fixed", "sweep"]
    for lemma in ("3.4", "3.5", "3.6", "3.7", "A.1"):
        assert any(line.startswith(lemma) for line in lines), lemma
    # computed next to printed
    assert "0.508187" in out and "0.5082" in out
    assert "2.68416" in out and "2.685" in out
    assert " NO" not in out


def test_lemmas_json(capsys):
    assert main(["theory", "lemmas", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 10
    for row in rows:
        for key in (
            "lemma",
            "fixed",
            "lambda_increasing",
            "lambda_decreasing",
            "printed_increasing",
            "printed_decreasing",
        ):
            assert key in row
        assert row["consistent"] is True
    lemma_34 = rows[0]
    assert lemma_34["lemma"] == "3.4" and lemma_34["fixed"] == "beta1=0.9"
    expected = lm.monotonicity_thresholds("beta2", 0.9)
    assert lemma_34["lambda_increasing"] == pytest.approx(expected.lambda_increasing, rel=1e-12)
    assert lemma_34["printed_increasing"] == 0.5082
    assert lemma_34["printed_decreasing"] == 0.494
    a1 = [row for row in rows if row["lemma"] == "A.1"]
    assert [row["printed"] for row in a1] == [3e-4, 4e-3, 1e-3, 6e-3, 6e-5, 5e-4]
    assert all(row["computed"] < row["printed"] for row in a1)


@pytest.mark.parametrize(
    ("batch_size", "regime", "betas"),
    [(64, "small batch", (0.9, 0.999)), (4096, "large batch", (0.999, 0.999))],
)
def test_recommend_json(capsys, batch_size, regime, betas):
    argv = ["recommend", "--n-samples", "16300", "--batch-size", str(batch_size)]
    assert main([*argv, "--b-simple", "300", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["regime"] == regime
    assert (result["beta1"], result["beta2"]) == betas
    assert result["noise_ratio"] == pytest.approx(ib.noise_ratio(16300, batch_size, 300.0))
    assert result["batch_size_lambda_1"] == pytest.approx(16300 * 300 / (16300 + 300 - 1))
    assert result["batch_size_lambda_half"] == pytest.approx(2 * 16300 * 300 / (16300 + 600 - 1))
    assert result["reasoning"]


def test_recommend_text(capsys):
    argv = ["recommend", "--n-samples", "100000", "--batch-size", "400", "--b-simple", "300"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "regime:" in out and "transition" in out
    assert "beta2 = 0.999" in out
    assert "why:" in out


@pytest.mark.parametrize(
    ("n", "b", "s", "message"),
    [("1", "1", "10", "n_samples"), ("100", "101", "10", "exceed"),
     ("100", "0", "10", "batch_size"), ("100", "10", "0", "b_simple"),
     ("100", "10", "-3", "b_simple")],
)  # fmt: skip
def test_recommend_bad_input_exits_2(capsys, n, b, s, message):
    argv = ["recommend", "--n-samples", n, "--batch-size", b, "--b-simple", s]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "error" in captured.err and message in captured.err


def test_grid_writes_netcdf_with_provenance(tmp_path, capsys):
    xr = pytest.importorskip("xarray")
    out = tmp_path / "theory" / "grid.nc"
    assert main(["theory", "grid", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    with xr.open_dataset(out) as ds:
        assert ds.c_total.dims == ("beta1", "beta2", "noise_ratio")
        value = ds.c_total.sel(beta1=0.9, beta2=0.999, noise_ratio=0.5).item()
        assert value == pytest.approx(float(ib.c_total(0.9, 0.999, 0.5)), rel=1e-12)
        for beta in (0.9, 0.99, 0.999):
            assert beta in ds.beta1.values and beta in ds.beta2.values
        assert ds.sizes["normal_point"] == 64
        first = (ds.normal_curve_beta1[0].item(), ds.normal_curve_beta2[0].item())
        assert first == pytest.approx((0.9, 0.999))
        assert set(np.unique(ds.stability_region.values)) == {-1, 1}
        assert ds.stability_region.attrs["flag_meanings"] == "B_plus B_zero B_minus"
        assert "provenance_git_commit" in ds.attrs and "provenance_packages" in ds.attrs
        lemmas = json.loads(ds.attrs["lemma_table"])
        assert [row["lemma"] for row in lemmas][:4] == ["3.4", "3.5", "3.6", "3.7"]
        for name in ("c_total", "stability_constant", "noise_ratio"):
            assert ds[name].attrs.get("long_name")
    assert not list(out.parent.glob(".*part"))  # atomic write left no temporary file


def test_recommend_subprocess_exit_code():
    """Through the real entry point: a bad batch size must exit with status 2 and say why."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow")}
    argv = ["recommend", "--n-samples", "1000", "--batch-size", "2000", "--b-simple", "50"]
    proc = subprocess.run(
        [sys.executable, "-m", "adamnoise", *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "batch_size (2000) must not exceed n_samples (1000)" in proc.stderr


def test_theory_rules_prints_every_rule(capsys):
    from adamnoise.theory.scaling_rules import RULES

    argv = ["theory", "rules", "--batch-sizes", "8", "32", "256", "--anchor-beta", "0.999"]
    argv += ["--n-samples", "256", "--b-simple", "20", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["axis"] == "beta2" and result["fixed"] == 0.9
    rows = {row["batch_size"]: row for row in result["rows"]}
    assert set(RULES) <= set(rows[32.0])
    # lambda = (256/32 - 1)/(255) * 20 = 0.549 > 0.5082: seed 000 takes the highest candidate
    assert rows[32.0]["noise_ratio"] == pytest.approx(7 / 255 * 20)
    assert rows[32.0]["implicit_bias"] == 0.9995 and rows[256.0]["implicit_bias"] == 0.9
    assert rows[32.0]["token_half_life"] == pytest.approx(0.999**4)
    assert rows[256.0]["sqrt_scaling"] == pytest.approx(0.968)
    assert rows[256.0]["equal_betas"] == 0.9 and rows[256.0]["fixed_default"] == 0.999


def test_theory_rules_rejects_bad_input_naming_the_flag(capsys):
    argv = ["theory", "rules", "--batch-sizes", "8", "512", "--anchor-beta", "1.0"]
    assert main([*argv, "--n-samples", "256", "--b-simple", "20"]) == 2
    err = capsys.readouterr().err
    assert "--anchor-beta" in err and "--batch-sizes" in err
