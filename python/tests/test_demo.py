"""The main job, shortened: `bgad demo --quick` on the real ELPV data."""

import json

import numpy as np
import pytest

from bgad.cli import main as cli_main

elpv_dataset = pytest.importorskip("elpv_dataset")


def test_quick_demo_writes_results_and_overlays(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli_main(["demo", "--quick", "--quiet", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "BGAD" in text and "NFAD" in text and "AHL 0.850" in text
    res = json.loads((out / "results.json").read_text())
    assert res["quick"] is True and res["strides"] == [8, 16]
    run = res["runs"][0]
    for variant in ("bgad", "nfad"):
        assert 0.0 <= run[variant]["image_auroc"] <= 1.0
    overlays = list((out / "overlays").glob("*.png"))
    assert len(overlays) == 5


@pytest.mark.parametrize("option", ["--strides", "--levels"])  # --levels: the deprecated old name
def test_demo_rejects_bad_strides(capsys, option):
    assert cli_main(["demo", "--quick", option, "8,x"]) == 2
    assert f"{option} must be comma-separated strides" in capsys.readouterr().err
