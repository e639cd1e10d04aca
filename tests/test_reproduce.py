"""Tests exported from nbs/90_reproduce.ipynb by `dg-export-tests`. DO NOT EDIT: edit the notebook."""

from dg_literate.reproduce import *

from fastcore.test import *
import io, os, json, tempfile, contextlib, importlib, inspect, torch
from pathlib import Path
import nbformat
from nbformat.v4 import new_notebook, new_code_cell
from dg_literate.core import read_metrics

def demo_notebook(folder):
    "A two-cell paper notebook: a tagged parameters cell, then work that writes metrics (or fails)."
    params = new_code_cell("n: int = 3  # how many things\nfail: bool = False  # raise in the work cell")
    params.metadata["tags"] = ["parameters"]
    work = new_code_cell(
        "from dg_literate.core import write_metrics, shrink_for_dry_run\nshrink_for_dry_run(globals(), n=1)\n"
        "if fail: raise ValueError('asked to fail')\nwrite_metrics({'demo/double': 2 * n, 'demo/n': n})\n"
        "import pandas as pd; from dg_literate.core import save_table\n"
        "_ = save_table(pd.DataFrame({'twice': [2 * n]}, index=pd.Index(['demo'], name='method')), 'demo', "
        "'twice n')\nprint(f'twice n = {2 * n}')"
    )
    nb = new_notebook(
        cells=[params, work],
        metadata={"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}},
    )
    Path(folder, "params").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, Path(folder)/"99_demo.ipynb"); Path(folder, "params", "demo.yaml").write_text("n: 4\n")
    return Paper(
        "demo",
        "99_demo.ipynb",
        "A demo paper",
        "Nobody, 2026",
        "",
        "params/demo.yaml",
        [
            Claim("twice n", "demo/double", paper=8.0),
            Claim("no such number", "demo/missing", paper=1.0),
            Claim("twice n - n", "demo/double - demo/n", paper=4.0, unit=""),
        ],
    )


def test_side_by_side_tables():
    import pandas as pd
    discover()
    with tempfile.TemporaryDirectory() as t:
        run = Path(t)/"10_efdm"/"efdm_toy"; run.mkdir(parents=True)
        (run/"status.json").write_text('{"status": "done"}'); (run/"params.json").write_text('{"params": {}}')
        (run / "metrics.json").write_text(
            json.dumps(
                {
                    "efdm/toyworld/lodo/efdmix/art_painting": 60.0,
                    "efdm/toyworld/lodo/efdmix/sketch": 70.0,
                    "efdm/toyworld/lodo/erm/art_painting": 50.0,
                }
            )
        )
        tabs = side_by_side(t); r = tabs["ResNet DG methods"]
        test_eq(list(r.columns), ["paper", "art_painting", "sketch", "avg"])
        test_eq(r.loc["EFDMix (EFDM run)", "avg"], 65.0)
        assert pd.isna(r.loc["ERM (EFDM run)", "avg"]) and pd.isna(
            r.loc["DomainFusion (DomainFusion run)", "art_painting"]
        )
        test_eq(tabs["vision-language methods"]["avg"].isna().all(), True)   # no run: nothing invented
        side_by_side_figure(tabs, Path(t)/"f.png"); assert (Path(t)/"f.png").stat().st_size > 1000


def test_metrics_as_tables():
    import pandas as pd
    mt = metrics_tables(
        {
            "p/toy/erm/art": 50.0,
            "p/toy/erm/avg": 55.0,
            "p/toy/efdmix/art": 60.0,
            "p/bench/speedup": 2.0,
            "p/note": "x",
            "top": 1,
        }
    )
    test_eq(sorted(mt), ["p", "p/toy"])
    test_eq(mt["p/toy"].loc["efdmix", "art"], 60.0)
    assert pd.isna(mt["p/toy"].loc["efdmix", "avg"])
    test_eq(mt["p"].loc["bench", "speedup"], 2.0)


def test_publish_default_run_only():
    import shutil
    outs = [
        {"output_type": "stream", "name": "stderr", "text": "10%|#"},
        {"output_type": "stream", "name": "stdout", "text": "acc 0.5"},
        {
            "output_type": "display_data",
            "data": {"application/vnd.jupyter.widget-view+json": {}, "text/plain": "VBox()"},
            "metadata": {},
        },
        {"output_type": "execute_result", "data": {"text/plain": "1"}, "metadata": {}, "execution_count": 7},
    ]
    # no bars, no widgets, no counts
    test_eq(published_outputs(outs), [outs[1], {**outs[3], "execution_count": None}])
    with tempfile.TemporaryDirectory() as t:
        PAPERS["demo"] = demo_notebook(t)
        try:
            test_fail(lambda: publish_run("demo", t, f"{t}/runs"), contains="run `dg-reproduce run demo` first")
            run_paper("demo", nbs=t, runs=f"{t}/runs", progress=False, overrides={"n": 5})
            # a run with other parameters ...
            p = Path(t, "runs", "99_demo", "demo_n=5"); shutil.move(p, p.parent/"demo")
            # ... is refused
            test_fail(lambda: publish_run("demo", t, f"{t}/runs"), contains="only the default run is published")
            shutil.rmtree(p.parent/"demo")
            run_paper("demo", nbs=t, runs=f"{t}/runs", progress=False)
            test_eq(check_published(t), [])  # nothing published yet: nothing to check
            path = publish_run("demo", t, f"{t}/runs")
            nb = json.loads(path.read_text())
            test_eq(nb["metadata"]["dg_literate"]["params"], {"n": 4})
            test_eq(len(nb["metadata"]["dg_literate"]["cells"]), 1)
            test_eq(check_published(t), [])
            Path(t, "params", "demo.yaml").write_text("n: 6\n")  # the default file changed: stale outputs
            test_eq(len(check_published(t)), 1); test_eq("parameters other than" in check_published(t)[0], True)
            Path(t, "params", "demo.yaml").write_text("n: 4\n")
            # the code changed: stale outputs
            nb["cells"][1]["source"] = "print('edited')"; path.write_text(json.dumps(nb))
            test_eq("changed since" in check_published(t)[0], True)
            for c in nb["cells"]: c["outputs"] = []
            # outputs cleared
            path.write_text(json.dumps(nb)); test_eq("lost their outputs" in check_published(t)[-1], True)
            test_fail(lambda: publish_run("demo", t, f"{t}/runs", limit=10), contains="limit")
        finally: PAPERS.pop("demo", None)
    discover()
    test_eq(check_published(), [])  # the repository's own notebooks


def test_progress_estimate():
    test_eq(time_left([], [3, 4]), 420)  # nothing finished: the expectations
    test_eq(time_left([(600, 5)], [10]), 1200)  # twice as slow so far: twice the rest
    test_eq(time_left([(60, 2), (60, 2)], []), 0)
    test_eq(
        progress_line(2, 5, "clap", None, 90, 600), "[2/5] clap: starting; 1.5 min elapsed, about 10 min left"
    )
    test_eq(
        progress_line(2, 5, "clap", 300, 390, 300),
        "[2/5] clap: done in 5.0 min; 6.5 min elapsed, about 5 min left",
    )


def test_runner_end_to_end():
    with tempfile.TemporaryDirectory() as t:
        nbs, runs = Path(t)/"nbs", Path(t)/"runs"; nbs.mkdir()
        register_paper(demo_notebook(nbs))
        try:
            test_eq(notebook_parameters(nbs/"99_demo.ipynb")["n"]["help"], "how many things")
            bad = nbformat.read(str(nbs / "99_demo.ipynb"), 4)
            cell = next(c for c in bad.cells if "parameters" in c.metadata.get("tags", []))
            cell.source += '\nroot: str = ""  # "" = the default'; nbformat.write(bad, str(nbs/"98_bad.ipynb"))
            test_fail(lambda: notebook_parameters(nbs/"98_bad.ipynb"), contains="['root']")
            out = run_paper("demo", nbs=nbs, runs=runs, overrides={"n": 5}, progress=False)
            test_eq(out, runs/"99_demo"/"demo_n=5"); test_eq(read_metrics(out)["demo/double"], 10)
            test_eq(json.loads((out/"params.json").read_text())["params"], {"n": 5})
            assert (out/"99_demo.ipynb").exists()
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                run_paper("demo", nbs=nbs, runs=runs, overrides={"n": 5}, progress=False)
            assert "already finished" in buf.getvalue()                      # resumable: done runs are skipped
            test_fail(
                lambda: run_paper("demo", nbs=nbs, runs=runs, overrides={"nn": 1}),
                contains="has no parameter(s) ['nn']",
            )
            test_fail(
                lambda: run_paper("demo", nbs=nbs, runs=runs, overrides={"n": "abc"}),
                contains="n: expected int, got 'abc' (str) from -p",
            )
            assert not (runs/"99_demo"/"demo_n=abc").exists()                 # refused before anything ran
            test_fail(lambda: run_paper("demo", nbs=nbs, runs=runs, overrides={"fail": True}, progress=False),
                      contains="failed in cell 2")  # cell 2: papermill inserted the injected-parameters cell
            test_eq(json.loads((runs/"99_demo"/"demo_fail=True"/"status.json").read_text())["status"], "failed")
            with contextlib.redirect_stderr(io.StringIO()) as err:
                test_eq(main(["--nbs", str(nbs), "--runs", str(runs), "run", "demo", "-p", "fail", "true"]), 1)
            assert "ValueError: asked to fail" in err.getvalue()
            # the dry-run shrink applies...
            dry = run_paper("demo", nbs=nbs, runs=runs, progress=False, dry_run=True)
            test_eq((dry.name, read_metrics(dry)["demo/double"]), ("demo_dry", 2))
            dry = run_paper("demo", nbs=nbs, runs=runs, overrides={"n": 3}, progress=False, dry_run=True)
            test_eq(read_metrics(dry)["demo/double"], 6)  # ...except to a value the user passed
            run_paper("demo", nbs=nbs, runs=runs, progress=False)  # the defaults: n=4 from params/demo.yaml
            rows = [r for r in results_table(runs, ["demo"]) if r["paper"] == "demo"]
            test_eq(
                [(r["run"], r["ours"], r["paper_value"]) for r in rows],
                [("demo", 8, 8.0), ("demo", None, 1.0), ("demo", 4, 4.0)],
            )
            # both finished non-dry runs, 3 claims each
            test_eq(len([r for r in results_table(runs) if r["paper"] == "demo"]), 6)
            # a finished run that measures none of the claims (a sweep) adds no rows
            import shutil
            shutil.copytree(runs/"99_demo"/"demo", runs/"99_demo"/"demo_sweep")
            (runs/"99_demo"/"demo_sweep"/"metrics.json").write_text(json.dumps({"demo/other": 1.0}))
            test_eq({r["run"] for r in results_table(runs) if r["paper"] == "demo"}, {"demo", "demo_n=5"})
            md = write_results(rows, runs)
            assert (
                "| demo | demo | toyworld | twice n | 8 | 8.0 | % |  |" in md
                and "| twice n - n | 4 | +4.0 |" in md
                and (runs / "results.csv").exists()
            ), md
            doc = results_document(runs, ["demo", "demo_n=5"])
            assert (
                "### Run `demo` (the default)" in doc
                and "twice n\n\n| method | twice |\n|---|---|\n| demo | 8 |" in doc
            ), doc
            assert (
                doc.index("### Run `demo` (the default)") < doc.index("### Run `demo_n=5`")
                and "| demo | 10 |" in doc
            )
            with contextlib.redirect_stdout(io.StringIO()):
                test_eq(
                    main(
                        [
                            "--nbs",
                            str(nbs),
                            "--runs",
                            str(runs),
                            "results",
                            "--tag",
                            "demo",
                            "--out",
                            str(runs / "R.md"),
                        ]
                    ),
                    0,
                )
            assert (runs/"R.md").read_text().startswith("# Results"), "results --out"
        finally:
            PAPERS.pop("demo", None)


def test_test_cells_are_stubbed_in_runs():
    import nbformat
    with tempfile.TemporaryDirectory() as t:
        book = nbformat.v4.new_notebook(
            cells=[
                nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell("#| pytest boom\nraise ValueError"),
                nbformat.v4.new_code_cell("#| pytest_setup\ny = 2"),
            ]
        )
        nbformat.write(book, f"{t}/a.ipynb")
        src = [c.source for c in nbformat.read(str(without_test_cells(f"{t}/a.ipynb", f"{t}/b.ipynb")), 4).cells]
        # setup cells stay: later cells may use them
        test_eq(src[0], "x = 1"); test_eq(src[2], "#| pytest_setup\ny = 2")
        test_eq(src[1].startswith("# test `boom`: run by `make test`"), True)


def test_registry_is_data_and_parameters_parse():
    import subprocess, sys
    papers = discover()
    test_eq(sorted(papers), ["clap", "domainfusion", "efdm", "promptstyler", "promptsync"])
    # every paper notebook's parameters parse
    for k, paper in papers.items(): notebook_parameters(nbs_dir()/paper.notebook)
    test_eq({k for k, _ in param_files()}, set(papers))  # every file belongs to a paper
    wrong = {"int": "abc", "float": "abc", "bool": "yes", "list": "abc", "str": 3, "dict": [1]}
    for k, paper in papers.items():  # every parameter refuses a wrong type
        for name, d in notebook_parameters(nbs_dir()/paper.notebook).items():
            t = d["inferred_type_name"]; assert t in wrong, (k, name, t)
            test_fail(
                lambda: check_types({name: wrong[t]}, {name: d}, {name: "-p"}), contains=f"{name}: expected {t}"
            )
    with tempfile.TemporaryDirectory() as t:                                           # ...before anything runs
        test_fail(
            lambda: run_paper("efdm", overrides={"epochs": "abc"}, runs=t),
            contains="epochs: expected int, got 'abc' (str) from -p",
        )
        test_eq(list(Path(t).iterdir()), [])
        if not torch.cuda.is_available():
            test_fail(
                lambda: run_paper("efdm", overrides={"device": "cuda"}, runs=t), contains="no usable CUDA device"
            )
    code = ("import sys, time; t = time.time(); from dg_literate.reproduce import main; main(['list']); "
            "print('TORCH', 'torch' in sys.modules, round(time.time() - t, 2))")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=nbs_dir().parent, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "efdm: Exact Feature Distribution Matching" in out.stdout and "TORCH False" in out.stdout, out.stdout[
        -500:
    ]
    print("dg-reproduce list:", out.stdout.strip().splitlines()[-1])


def test_imports_have_no_side_effects():
    import subprocess, sys, pkgutil, dg_literate
    mods = [m.name for m in pkgutil.iter_modules(dg_literate.__path__) if not m.name.startswith("_")]
    with tempfile.TemporaryDirectory() as t:
        code = "import importlib, dg_literate.reproduce as r\n" + "".join(
            f"importlib.import_module('dg_literate.{m}')\n" for m in mods
        )
        code += "import dg_literate.data as d\nassert not r.PAPERS and not d.DATASETS, (r.PAPERS, d.DATASETS)"
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=t,
            env={
                **os.environ,
                "DG_LITERATE_CACHE": str(Path(t) / "cache"),
                "XDG_CACHE_HOME": str(Path(t) / "xdg"),
            },
        )
        assert out.returncode == 0, out.stderr[-2000:]
        test_eq(sorted(p.name for p in Path(t).iterdir()), [])               # no cache folder, no file written


def test_build_command():
    with tempfile.TemporaryDirectory() as t:
        test_fail(lambda: build_model("toyvgg"), contains="unknown model")
        with contextlib.redirect_stderr(io.StringIO()):
            test_fail(lambda: main(["build", "toyvgg"]), exc=SystemExit)
        for name, (mod, fn, cfg) in BUILDS.items():  # each recipe is importable and takes out/device
            f = getattr(importlib.import_module(mod), fn)
            assert {"out", "device"} <= set(inspect.signature(f).parameters), name


def test_benchmarks_are_discovered():
    assert "clip.bench_text_truncation" in benchmarks()
