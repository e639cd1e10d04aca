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
    params = new_code_cell(
        "n: int = 3  # how many things\nfail: bool = False  # raise in the work cell\n"
        "sleep: float = 0.0  # seconds the work cell waits\nbig: int = 0  # MB the work cell saves (0: none)"
    )
    params.metadata["tags"] = ["parameters"]
    work = new_code_cell(
        "from dg_literate.core import write_metrics, shrink_for_dry_run, shrink_for_test, save_atomic, run_dir\n"
        "shrink_for_dry_run(globals(), n=1)\nshrink_for_test(globals(), n=2)\nimport time, torch; time.sleep(sleep)\n"
        "if big: save_atomic(torch.zeros(big * 2**18), run_dir()/'big.pt')\n"
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


def test_runner_checks_before_running():
    # every value is checked before the kernel starts, and a smoke run never silently replaces what the user passed
    import time
    discover(); efdm = PAPERS["efdm"]; nbs = nbs_dir()
    t0 = time.time()
    test_fail(lambda: resolve_params(efdm, nbs, overrides={"domains": ["photo", "nosuch"]}), contains="no domain 'nosuch'")
    test_fail(lambda: resolve_params(efdm, nbs, overrides={"held_out": ["Photo"]}), contains="held_out: toyworld has no domain 'Photo'")
    test_fail(lambda: resolve_params(efdm, nbs, overrides={"epochs": 0}), contains="epochs: 0 is below 1 (from -p)")
    test_fail(lambda: resolve_params(efdm, nbs, overrides={"n_per_domain": -3}), contains="n_per_domain: -3 is below 1")
    test_fail(lambda: resolve_params(efdm, nbs, overrides={"device": "tpu0"}), contains="not a torch device")
    test_fail(lambda: resolve_params(efdm, nbs, overrides={"launcher": "slurm"}), contains="launcher: 'slurm'")
    test_fail(lambda: resolve_params(PAPERS["promptsync"], nbs, overrides={"source": "foto"}), contains="source: toyworld has no domain 'foto'")
    test_fail(lambda: resolve_params(PAPERS["promptstyler"], nbs, overrides={"datasets": ["toyworld", "NoSuch"]}), contains="unknown dataset 'NoSuch'")
    _, p, _ = resolve_params(efdm, nbs, overrides={"ast_steps": 0, "single_epochs": 0})      # 0 where the help allows it
    test_eq((p["ast_steps"], p["single_epochs"]), (0, 0))
    assert time.time() - t0 < 30, "checks must not render or load anything"
    # --smoke: its values are what runs and what params.json records; a clash with -p is refused
    test_fail(lambda: resolve_params(efdm, nbs, overrides={"epochs": 0, "domains": ["photo", "nosuch"]}, smoke=True),
              contains="--smoke sets epochs=1 (you passed 0), domains=['photo', 'sketch'] (you passed ['photo', 'nosuch']) itself")
    _, p, src = resolve_params(efdm, nbs, overrides={"lr": 0.02}, smoke=True)
    test_eq((p["epochs"], p["n_per_domain"], p["domains"], p["lr"], src["epochs"]), (1, 21, ["photo", "sketch"], 0.02, "--smoke"))
    # YAML: one line naming the file or the -p value and the line; a file must be a mapping
    with tempfile.TemporaryDirectory() as t:
        (Path(t)/"bad.yaml").write_text("epochs: 3\nseeds: [0, 1\n")
        test_fail(lambda: resolve_params(efdm, nbs, str(Path(t)/"bad.yaml")), contains=f"{Path(t)/'bad.yaml'}, line 3: not valid YAML")
        (Path(t)/"list.yaml").write_text("- epochs: 3\n")
        test_fail(lambda: resolve_params(efdm, nbs, str(Path(t)/"list.yaml")), contains="is a mapping of `name: value` lines, not a list")
        with contextlib.redirect_stderr(io.StringIO()) as err:
            test_eq(main(["--runs", t, "run", "efdm", "-p", "seeds", "[0, 1"]), 1)
        test_eq(err.getvalue().count("\n"), 1); assert "-p seeds, line 1: not valid YAML" in err.getvalue(), err.getvalue()
        with contextlib.redirect_stderr(io.StringIO()) as err:
            test_eq(main(["--runs", t, "run", "efdm", "--smoke", "-p", "epochs", "0"]), 1)
        assert "--smoke sets epochs=1 (you passed 0) itself" in err.getvalue()
        assert not (Path(t)/"10_efdm").exists()                                  # nothing ran


def test_runner_one_writer_and_honest_status():
    # two processes on one run folder, and the status a run leaves after SIGTERM, Ctrl-C and SIGKILL
    import signal, subprocess, sys, time, yaml
    def started(out, timeout=90):  # the demo's work cell is executing
        t0 = time.time()
        while time.time() - t0 < timeout:
            try:
                cells = json.loads((out/".99_demo.partial.ipynb").read_text())["cells"]
                if cells[-1]["metadata"].get("papermill", {}).get("status") == "running": return
            except (OSError, ValueError, KeyError): pass
            time.sleep(0.3)
        raise AssertionError(f"the demo run did not start: {run_status(out)}")
    with tempfile.TemporaryDirectory() as t:
        nbs, runs = Path(t)/"nbs", Path(t)/"runs"; nbs.mkdir(); paper = register_paper(demo_notebook(nbs))
        (nbs/"params"/"papers.yaml").write_text(yaml.safe_dump({"demo": dict(
            notebook=paper.notebook, title=paper.title, citation=paper.citation, url="", params=paper.params)}))
        cli = "import sys; from dg_literate.reproduce import main; sys.exit(main(sys.argv[1:]))"
        go = lambda: subprocess.Popen([sys.executable, "-c", cli, "--nbs", str(nbs), "--runs", str(runs), "run", "demo",
                                       "-p", "sleep", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out = runs/"99_demo"/"demo_sleep=60"
        a = b = c = None
        try:
            a = go(); started(out)
            test_fail(lambda: run_paper("demo", nbs=nbs, runs=runs, overrides={"sleep": 60}, progress=False),
                      contains=f"is already running (pid {a.pid} since ")
            a.send_signal(signal.SIGTERM); test_eq(a.wait(60), 130)
            st = run_status(out); test_eq((st["status"], st["reason"]), ("interrupted", "SIGTERM"))
            assert "interrupted" in a.stderr.read()
            b = go(); started(out); b.send_signal(signal.SIGINT); test_eq(b.wait(60), 130)
            test_eq(run_status(out)["status"], "interrupted"); test_eq(run_status(out)["reason"], "Ctrl-C (SIGINT)")
            c = go(); started(out); c.kill(); c.wait(60)                          # SIGKILL: nothing can be written
            test_eq(json.loads((out/"status.json").read_text())["status"], "running")
            st = run_status(out); test_eq(st["status"], "interrupted"); assert f"pid {c.pid}" in st["reason"], st
            with contextlib.redirect_stdout(io.StringIO()) as o: main(["--nbs", str(nbs), "--runs", str(runs), "results", "--out", f"{t}/R.md"])
            assert "not in the results, interrupted: demo/demo_sleep=60" in o.getvalue(), o.getvalue()
            # the dead process's lock is taken over, and the run finishes in the same folder
            run_paper("demo", nbs=nbs, runs=runs, overrides={"sleep": 0}, tag="demo_sleep=60", progress=False)
            test_eq(run_status(out)["status"], "done"); assert (out/"99_demo.ipynb").exists()
            test_eq([p.name for p in out.glob(".*")], [])                          # no partial notebook left
        finally:
            for p in (a, b, c):
                if p is not None and p.poll() is None: p.kill()
            PAPERS.pop("demo", None)


def test_runner_full_disk():
    # a run that fills its disk fails in one line, leaves no partial file, and the next run is not tripped by it
    import subprocess
    with tempfile.TemporaryDirectory() as t:
        nbs, runs = Path(t)/"nbs", Path(t)/"runs"; nbs.mkdir(); runs.mkdir(); register_paper(demo_notebook(nbs))
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(runs)], capture_output=True).returncode:
            PAPERS.pop("demo", None); skip("cannot mount a small tmpfs here (needs root)")
        else:
            try:
                try: run_paper("demo", nbs=nbs, runs=runs, overrides={"big": 8}, progress=False); raise AssertionError("no error")
                except RunFailed as e: msg = str(e)
                assert msg.startswith(f"demo: no space left on {runs} while writing ") and "8.0 MB needed" in msg, msg
                test_eq(msg.count("\n"), 0)
                out = runs/"99_demo"/"demo_big=8"
                test_eq(run_status(out)["status"], "failed")
                test_eq(list(out.rglob("*.tmp")) + list(out.rglob("*.partial.ipynb")), [])
                json.loads((out/"99_demo.ipynb").read_text())                         # the executed notebook is whole
                run_paper("demo", nbs=nbs, runs=runs, overrides={"big": 1}, progress=False, tag="demo_big=8")
                test_eq(run_status(out)["status"], "done")
            finally:
                subprocess.run(["umount", str(runs)]); PAPERS.pop("demo", None)


def test_results_keep_runs_not_here():
    # RESULTS.md from a checkout whose runs/ lacks the long runs: every row with a number is kept
    from dg_literate.core import repo_root
    root = repo_root(); discover()
    old = (root/"RESULTS.md").read_text(); prev = previous_results(old)
    assert len(prev["claims"]) > 40 and "efdm_toy_full" in prev["sections"][PAPERS["efdm"].title], "the committed RESULTS.md"
    numbered = lambda rows: {(r["paper"], r["run"], r["claim"], r["ours"]) for r in rows if r["ours"] != "-"}
    headings = lambda text: [l for l in text.splitlines() if l.startswith(("### Run", "| ", "## "))]
    with tempfile.TemporaryDirectory() as t:
        bare = results_document(t, previous=None)                                 # without the old file: rows lost
        assert numbered(previous_results(bare)["claims"]) == set()
        kept = []; doc = results_document(t, previous=old, kept=kept)
        new = previous_results(doc)
        test_eq(numbered(new["claims"]), numbered(prev["claims"]))
        test_eq({p: list(s) for p, s in new["sections"].items()}, {p: list(s) for p, s in prev["sections"].items()})
        test_eq(new["sections"], prev["sections"]); test_eq(new["side"], prev["side"])
        assert any("efdm/efdm_toy_full" in k for k in kept), kept
        # a run present here replaces its old rows; the others stay
        run = Path(t)/"10_efdm"/"efdm_toy"; run.mkdir(parents=True)
        c = PAPERS["efdm"].claims[0]; a, b = [k.strip().replace("{dataset}", "toyworld") for k in c.metric.split(" - ")]
        (run/"metrics.json").write_text(json.dumps({a: 50.0, b: 40.0}))
        (run/"params.json").write_text(json.dumps({"params_file": "efdm_toy.yaml", "params": {}}))
        (run/"status.json").write_text(json.dumps({"status": "done", "seconds": 1.0}))
        new = previous_results(results_document(t, previous=old))["claims"]
        ours = {(r["run"], r["claim"]): r["ours"] for r in new if r["paper"] == "efdm"}
        test_eq(ours[("efdm_toy", c.claim)], "+10.0"); test_eq(ours[("efdm_toy_full", c.claim)], "+2.1")
        assert ("efdm_toy", "LODO average accuracy, ERM") not in {k for k, v in ours.items() if v != "-"}


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
