"""Tests exported from nbs/90_reproduce.ipynb by `dg-export-tests`. DO NOT EDIT: edit the notebook."""

from dg_literate.reproduce import *

from fastcore.test import *
import io, os, json, tempfile, contextlib, importlib, inspect
from pathlib import Path
import nbformat
from nbformat.v4 import new_notebook, new_code_cell
from dg_literate.core import read_metrics

def demo_notebook(folder):
    "A two-cell paper notebook: a tagged parameters cell, then work that writes metrics (or fails)."
    params = new_code_cell("n: int = 3  # how many things\nfail: bool = False  # raise in the work cell")
    params.metadata["tags"] = ["parameters"]
    work = new_code_cell("from dg_literate.core import write_metrics\nif fail: raise ValueError('asked to fail')\nwrite_metrics({'demo/double': 2 * n})")
    nb = new_notebook(cells=[params, work], metadata={"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}})
    Path(folder, "params").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, Path(folder)/"99_demo.ipynb"); Path(folder, "params", "demo.yaml").write_text("n: 4\n")
    return Paper("demo", "99_demo.ipynb", "A demo paper", "Nobody, 2026", "", "params/demo.yaml",
                 [Claim("twice n", "demo/double", paper=8.0), Claim("no such number", "demo/missing", paper=1.0)])


def test_runner_end_to_end():
    with tempfile.TemporaryDirectory() as t:
        nbs, runs = Path(t)/"nbs", Path(t)/"runs"; nbs.mkdir()
        register_paper(demo_notebook(nbs))
        try:
            test_eq(notebook_parameters(nbs/"99_demo.ipynb")["n"]["help"], "how many things")
            for k, paper in list(discover().items()):                        # every paper notebook's parameters parse
                if k != "demo": notebook_parameters(nbs_dir()/paper.notebook)
            bad = nbformat.read(str(nbs/"99_demo.ipynb"), 4); cell = next(c for c in bad.cells if "parameters" in c.metadata.get("tags", []))
            cell.source += '\nroot: str = ""  # "" = the default'; nbformat.write(bad, str(nbs/"98_bad.ipynb"))
            test_fail(lambda: notebook_parameters(nbs/"98_bad.ipynb"), contains="['root']")
            out = run_paper("demo", nbs=nbs, runs=runs, overrides={"n": 5}, progress=False)
            test_eq(out, runs/"99_demo"/"demo_n=5"); test_eq(read_metrics(out)["demo/double"], 10)
            test_eq(json.loads((out/"params.json").read_text())["params"], {"n": 5})
            assert (out/"99_demo.ipynb").exists()
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf): run_paper("demo", nbs=nbs, runs=runs, overrides={"n": 5}, progress=False)
            assert "already finished" in buf.getvalue()                      # resumable: done runs are skipped
            test_fail(lambda: run_paper("demo", nbs=nbs, runs=runs, overrides={"nn": 1}), contains="has no parameter(s) ['nn']")
            test_fail(lambda: run_paper("demo", nbs=nbs, runs=runs, overrides={"fail": True}, progress=False),
                      contains="failed in cell 2")                           # cell 2: papermill inserted the injected-parameters cell
            test_eq(json.loads((runs/"99_demo"/"demo_fail=True"/"status.json").read_text())["status"], "failed")
            with contextlib.redirect_stderr(io.StringIO()) as err:
                test_eq(main(["--nbs", str(nbs), "--runs", str(runs), "run", "demo", "-p", "fail", "true"]), 1)
            assert "ValueError: asked to fail" in err.getvalue()
            run_paper("demo", nbs=nbs, runs=runs, progress=False)               # the defaults: n=4 from params/demo.yaml
            rows = [r for r in results_table(runs) if r["paper"] == "demo"]
            test_eq([(r["ours"], r["paper_value"]) for r in rows], [(8, 8.0), (None, 1.0)])
            md = write_results(rows, runs)
            assert "| demo | twice n |  | 8 | 8.0 | `demo/double` |" in md and (runs/"results.csv").exists()
        finally: PAPERS.pop("demo", None)


def test_build_command():
    with tempfile.TemporaryDirectory() as t:
        test_fail(lambda: build_model("toyvgg"), contains="unknown model")
        with contextlib.redirect_stderr(io.StringIO()): test_fail(lambda: main(["build", "toyvgg"]), exc=SystemExit)
        for name, (mod, fn, cfg) in BUILDS.items():                               # each recipe is importable and takes out/device
            f = getattr(importlib.import_module(mod), fn); assert {"out", "device"} <= set(inspect.signature(f).parameters), name


def test_benchmarks_are_discovered():
    assert "clip.bench_text_truncation" in benchmarks()
