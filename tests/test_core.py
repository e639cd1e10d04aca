"""Tests exported from nbs/00_core.ipynb by `dg-export-tests`. DO NOT EDIT: edit the notebook."""

from dg_literate.core import *

from fastcore.test import *
from fastcore.xtras import modified_env
import os, json, random, tempfile
from pathlib import Path
import numpy as np, torch


def test_seed_reproducible():
    set_seed(3); a = (random.random(), np.random.rand(), torch.rand(2))
    set_seed(3); b = (random.random(), np.random.rand(), torch.rand(2))
    test_eq(a[0], b[0]); test_eq(a[1], b[1]); test_eq(a[2], b[2])
    set_seed(4); test_ne(torch.rand(2), b[2])
    test_eq(default_device().type in ("cpu", "cuda"), True)


def test_folders():
    with tempfile.TemporaryDirectory() as t, modified_env(
        DG_LITERATE_CACHE=t, DG_LITERATE_RUN_DIR=str(Path(t) / "run")
    ):
        test_eq(cache_dir("a", "b"), Path(t)/"a"/"b"); assert (Path(t)/"a"/"b").is_dir()
        test_eq(run_dir("figs"), Path(t)/"run"/"figs")
    root = repo_root()   # notebooks run in nbs/, pytest in the repository
    assert root is not None and (root/"settings.ini").is_file() and (root/"nbs").is_dir()
    assert repo_root("/") in (None, root)   # outside a checkout: the editable install's checkout, or None


def test_atomic_write_full_disk():
    import errno, subprocess, warnings
    from unittest import mock
    with tempfile.TemporaryDirectory() as t:
        f = Path(t)/"a.pt"; save_atomic({"x": torch.arange(3)}, f); test_eq(load_cached(f)["x"], torch.arange(3))
        def half(fh, data): fh.write(data[: len(data) // 2]); raise OSError(errno.ENOSPC, "No space left on device")
        with mock.patch.dict(atomic_write.__globals__, _write_bytes=half):       # a disk that fills mid-write
            test_fail(lambda: save_atomic({"x": torch.zeros(2**18)}, f), contains="no space left on /")
            try: atomic_write(Path(t)/"b.json", "x" * 3 * 2**20)
            except DiskFull as e: assert "while writing" in str(e) and "3.0 MB needed" in str(e), e
        test_eq(sorted(p.name for p in Path(t).iterdir()), ["a.pt"])             # no partial file left
        test_eq(load_cached(f)["x"], torch.arange(3))                            # the old file is whole
        f.write_bytes(b"garbage")
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always"); test_eq(load_cached(f), None)
        assert str(f) in str(w[0].message) and not f.exists()
        # a real small disk, where this machine lets us mount one
        d = Path(t)/"small"; d.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)], capture_output=True).returncode == 0:
            try:
                test_fail(lambda: atomic_write(d/"big.bin", bytes(3 * 2**20)), contains=f"no space left on {d}")
                test_eq(list(d.iterdir()), [])
            finally: subprocess.run(["umount", str(d)])


def test_shipped_weights_checked():
    with tempfile.TemporaryDirectory() as t, modified_env(DG_LITERATE_WEIGHTS=t):
        test_fail(lambda: shipped_weights("toyx"), contains="dg-reproduce build toyx")
        d = Path(t) / "toyx"
        d.mkdir()
        (d / "w.bin").write_bytes(b"12345")
        (d / "sub").mkdir()
        (d / "sub" / "c.json").write_text("{}")
        man = write_manifest(d, device="cpu", seconds=1.5)
        test_eq(sorted(man["files"]), ["sub/c.json", "w.bin"]); test_eq(man["device"], "cpu")
        test_eq(shipped_weights("toyx"), d)
        (d/"w.bin").write_bytes(b"12346")
        test_fail(lambda: shipped_weights("toyx"), contains="corrupt")
        (d/"w.bin").unlink()
        test_fail(lambda: shipped_weights("toyx"), contains="missing")
        (d/"MANIFEST.json").unlink()                                             # files there, manifest gone
        test_fail(lambda: shipped_weights("toyx"), contains="MANIFEST.json is missing, so the weights")


def test_shrink_for_test_only_in_test():
    ns = dict(epochs=30, seeds=[0, 1, 2])
    with modified_env("IN_TEST"):
        test_eq(shrink_for_test(ns, epochs=1), False); test_eq(ns["epochs"], 30)
    with modified_env(IN_TEST="1"):
        test_eq(shrink_for_test(ns, epochs=1, seeds=[0]), True); test_eq(ns, dict(epochs=1, seeds=[0]))
        test_fail(lambda: shrink_for_test(ns, lr=0.1), contains="not parameters")


def test_shrink_for_dry_run_keeps_user_values():
    ns = dict(epochs=30, pretrained="openai", seeds=[0, 1])
    with modified_env("DG_LITERATE_DRY_RUN"):
        test_eq(shrink_for_dry_run(ns, epochs=1), False)
        test_eq(ns["epochs"], 30)
    with modified_env(DG_LITERATE_DRY_RUN="1", DG_LITERATE_USER_PARAMS='["pretrained"]'):
        test_eq(shrink_for_dry_run(ns, epochs=1, pretrained="", seeds=[0]), True)
        test_eq(ns, dict(epochs=1, pretrained="openai", seeds=[0]))          # the user's checkpoint is kept
        test_fail(lambda: shrink_for_dry_run(ns, lr=0.1), contains="not parameters")
    test_eq(resolve_device("cpu"), "cpu")
    test_fail(lambda: resolve_device("tpu:0"), contains="not a torch device")
    if not torch.cuda.is_available(): test_fail(lambda: resolve_device("cuda"), contains="no usable CUDA device")


def test_metrics_roundtrip():
    with tempfile.TemporaryDirectory() as t:
        write_metrics({"acc": torch.tensor(0.5), "n": np.int64(3)}, t, prefix="p/")
        m = write_metrics({"acc": 0.75, "nan": float("nan")}, t, prefix="p/")
        test_eq(m, {"p/acc": 0.75, "p/n": 3, "p/nan": None}); test_eq(read_metrics(t), m)
        test_fail(lambda: write_metrics({"bad": [1, 2]}, t), contains="JSON scalar")
        test_eq(read_metrics(Path(t)/"missing.json"), {})


def test_save_fig_not_published_in_test():
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    with tempfile.TemporaryDirectory() as t, modified_env(DG_LITERATE_RUN_DIR=t, IN_TEST="1"):
        fig, ax = plt.subplots(figsize=(1, 1)); ax.plot([0, 1])
        p = save_fig(fig, "zz_core_test_fig", publish=True); plt.close(fig)
        assert p.exists() and p.parent == Path(t)/"figures"
        assert not (repo_root()/"figures"/"zz_core_test_fig.png").exists()
    with tempfile.TemporaryDirectory() as t, modified_env(
        "IN_TEST", "DG_LITERATE_DRY_RUN", DG_LITERATE_RUN_DIR=t, DG_LITERATE_PUBLISH="0"
    ):
        fig, ax = plt.subplots(figsize=(1, 1)); ax.plot([0, 1])
        # a non-default runner run: not published
        p = save_fig(fig, "zz_core_test_fig", publish=True); plt.close(fig)
        assert p.exists() and not (repo_root()/"figures"/"zz_core_test_fig.png").exists()


def test_save_table_writes_csv_and_markdown():
    import pandas as pd
    with tempfile.TemporaryDirectory() as t, modified_env(DG_LITERATE_RUN_DIR=t):
        df = pd.DataFrame(
            {"acc": [61.234, float("nan")], "n": [3, 4]}, index=pd.Index(["ERM", "EFDMix"], name="method")
        )
        test_eq(save_table(df, "demo", "accuracy (%)") is df, True)
        test_eq((Path(t)/"tables"/"demo.md").read_text(),
                "accuracy (%)\n\n| method | acc | n |\n|---|---|---|\n| ERM | 61.23 | 3 |\n| EFDMix |  | 4 |\n")
        test_eq(pd.read_csv(Path(t)/"tables"/"demo.csv", index_col=0).loc["ERM", "n"], 3)
        test_eq(markdown_table(pd.DataFrame({"a": ["x"]})), "| a |\n|---|\n| x |\n")
        test_eq(
            markdown_table(pd.DataFrame({"a": [1.0]}, index=["erm"])), "|  | a |\n|---|---|\n| erm | 1.00 |\n"
        )  # unnamed index


def test_hf_offline_respects_user_choice():
    with modified_env(HF_HUB_OFFLINE="0"): test_eq(hf_offline_defaults(), False)
    with modified_env(HF_HUB_OFFLINE="1"): test_eq(hf_offline_defaults(), True)
    import huggingface_hub.constants as C; test_eq(C.HF_HUB_OFFLINE, True)


def test_export_tests_roundtrip():
    import nbformat
    with tempfile.TemporaryDirectory() as t:
        nbs = Path(t)/"nbs"; nbs.mkdir()
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in [
            "#| default_exp core", "#| pytest_setup\nX = 2", "#| pytest adds\nassert X + 1 == 3", "y = 5",
            "#| pytest bad_uses_notebook_state\nassert y == 5"]])
        nbformat.write(nb, nbs/"00_x.ipynb")
        (f,) = export_tests(nbs, Path(t)/"tests")
        ns = {}; exec(compile(f.read_text(), str(f), "exec"), ns)
        ns["test_adds"]()
        # tests cannot lean on notebook state
        test_fail(ns["test_bad_uses_notebook_state"], contains="'y' is not defined")
