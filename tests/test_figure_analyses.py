"""The numbers the figures show are written by analysis commands (rules), not computed in the
notebooks: `adamnoise growth`, `diagonal-gap`, `optimizer-gap`, the predictions' summary and the
toy tables, each held to the package function it wraps (synthetic aggregates, known answers)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_comparison import aggregate

from adamnoise.cli import main


def test_growth_writes_the_growth_of_every_run_with_its_summary(tmp_path):
    from adamnoise.analysis import growth_summary, max_update_growth
    from adamnoise.status import STATUS_CODES, STOP_CODES

    rates = np.array([[0.0, 0.01], [0.05, -0.002]])  # (beta1, beta2)
    steps = np.arange(1, 601)
    data = xr.Dataset(
        {
            "max_update": (("beta1", "beta2", "train_step"), np.exp(rates[:, :, None] * steps)),
            "status": (("beta1", "beta2"), np.full((2, 2), STATUS_CODES["completed"])),
            "stop_reason": (("beta1", "beta2"), np.full((2, 2), STOP_CODES["cap"])),
        },
        coords={"beta1": [0.9, 0.999], "beta2": [0.9, 0.999], "train_step": steps},
        attrs={"experiment": "grid"},
    )
    data.to_netcdf(tmp_path / "aggregate.nc")
    assert main(["growth", str(tmp_path / "aggregate.nc"), "--out", str(tmp_path / "g.nc")]) == 0
    growth = xr.load_dataset(tmp_path / "g.nc")
    expected = max_update_growth(data)  # n = 500 from 495 and 505: the runs reach 600
    np.testing.assert_allclose(growth["measured"], expected["measured"])
    assert (growth.attrs["step"], growth.attrs["half_window"]) == (500, 5)
    for key, value in growth_summary(expected, data).items():
        assert growth.attrs[f"summary_{key}"] == pytest.approx(value, nan_ok=True), key
    assert "provenance_git_commit" in growth.attrs

    # runs too short for n = 500 are measured at their middle (growth_window)
    data.isel(train_step=slice(0, 24)).to_netcdf(tmp_path / "short.nc")
    assert main(["growth", str(tmp_path / "short.nc"), "--out", str(tmp_path / "s.nc")]) == 0
    assert xr.load_dataset(tmp_path / "s.nc").attrs["step"] == 12


def test_diagonal_gap_writes_the_table_the_notebook_shows(tmp_path):
    from adamnoise.predictions import diagonal_gap

    betas = (0.9, 0.99, 0.999)
    means = np.array([[12.0, 10.0, 9.0], [11.0, 9.5, 10.5], [13.0, 12.0, 11.0]])
    ppl = np.stack([means - 0.1, means + 0.1], axis=-1)[None, :, :, None, :]
    data = aggregate(ppl, "adam", beta1=betas, beta2=betas, batch=(8,))
    data.to_netcdf(tmp_path / "aggregate.nc")
    csv = tmp_path / "diagonal_gap.csv"
    assert main(["diagonal-gap", str(tmp_path / "aggregate.nc"), "--csv", str(csv)]) == 0
    table = pd.read_csv(csv)
    pd.testing.assert_frame_equal(table, diagonal_gap(data), check_dtype=False, rtol=1e-5)
    assert table["gap"].item() == pytest.approx(0.5)
    data.isel(beta1=0, drop=True).to_netcdf(tmp_path / "tied.nc")
    assert main(["diagonal-gap", str(tmp_path / "tied.nc"), "--csv", str(csv)]) == 1


def test_optimizer_gap_writes_the_comparison_in_the_config_order(tmp_path):
    adam = aggregate(np.array([10.0, 20.0]).reshape(2, 1, 1, 1, 1), "adam")
    sgd = aggregate(np.array([10.0, 40.0]).reshape(2, 1, 1, 1, 1), "sgd")
    paths = []
    for name, data in (("a", sgd), ("b", adam)):
        paths.append(tmp_path / f"{name}.nc")
        data.to_netcdf(paths[-1])
    out = tmp_path / "optimizer_gap.nc"
    assert main(["optimizer-gap", *map(str, paths), "--out", str(out)]) == 0
    gap = xr.load_dataset(out)
    assert gap.attrs["reference"] == "exp-sgd"  # the first given
    assert json.loads(gap.attrs["aggregates"]) == [str(p) for p in paths]
    np.testing.assert_allclose(gap["gap_loss"].sel(experiment="exp-adam"), [0.0, -np.log(2)])
    assert main(["optimizer-gap", str(paths[0]), "--out", str(out)]) == 1  # two or more
    assert main(["optimizer-gap", str(paths[0]), str(paths[0]), "--out", str(out)]) == 2


def test_the_toy_tables_are_written_as_printed(tmp_path, capsys):
    import argparse

    from adamnoise.toy import cli
    from adamnoise.toy.quadratic import gap_table

    shape = (1, 1, 2, 2, 2)
    dims = ("protocol", "hessian", "optimizer", "batch_size", "run")
    loss = np.arange(np.prod(shape), dtype=float).reshape(shape) + 1
    dataset = xr.Dataset(
        {"final_loss": (dims, loss)},
        coords={
            "protocol": ["fixed"],
            "hessian": ["heterogeneous"],
            "optimizer": ["sgd", "adam"],
            "batch_size": [1, 9],
        },
    )
    args = argparse.Namespace(
        runs=None, toy_command="gap", out=str(tmp_path / "g.nc"), csv=str(tmp_path / "g.csv")
    )
    assert cli._run(args, lambda runs, command: dataset.copy(), gap_table) == 0
    table = pd.read_csv(tmp_path / "g.csv", index_col=[0, 1, 2])
    assert table.index.names == ["protocol", "hessian", "quantity"]
    expected = gap_table(dataset)
    np.testing.assert_allclose(table.values, expected.values, rtol=1e-5)
    assert list(table.index) == list(expected.index)
    assert "adam/sgd" in capsys.readouterr().out
