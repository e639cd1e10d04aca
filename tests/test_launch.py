"""Tests exported from nbs/08_launch.ipynb by `dg-export-tests`. DO NOT EDIT: edit the notebook."""

from dg_literate.launch import *

from fastcore.test import *
import json, os, tempfile, time
from pathlib import Path


def test_local_launcher_resumes():
    with tempfile.TemporaryDirectory() as t:
        jobs = [Job(f"s{s}", toy_job, dict(seed=s, n=1000)) for s in range(4)]
        rs = run_jobs(jobs, 2.0, t, progress=False)
        test_eq([r["cfg"]["seed"] for r in rs], [0, 1, 2, 3])
        stamp = {f.name: f.stat().st_mtime_ns for f in Path(t).glob("*.json")}
        (Path(t)/"s3.json").unlink()  # an interrupted grid: one job left
        rs2 = run_jobs(jobs, 2.0, t, progress=False)
        test_eq(rs2, rs)
        test_eq(
            {f.name: f.stat().st_mtime_ns for f in Path(t).glob("s[012].json")},
            {k: v for k, v in stamp.items() if k != "s3.json"},
        )
        test_fail(lambda: run_jobs(jobs + jobs[:1], 2.0, t), contains="share a key")
        test_fail(lambda: run_jobs(jobs, 2.0, t, launcher="slurm"), contains="unknown launcher")
        def other(r):
            if r["cfg"]["n"] != 5: raise ValueError("trained with another config")
        test_fail(
            lambda: run_jobs([Job("s0", toy_job, dict(seed=0, n=5), check=other)], 2.0, t),
            contains="another config",
        )
        test_eq(job_key("PromptSync* seed 0", dict(a=1, b=2)), job_key("PromptSync* seed 0", dict(b=2, a=1)))
        test_ne(job_key("x", dict(a=1)), job_key("x", dict(a=2)))
        assert job_key("a b*/c", {}).startswith("a_b_c-")


def test_tensors_beside_results():
    import torch
    with tempfile.TemporaryDirectory() as t:
        jobs = [Job(f"t{s}", tensor_job, dict(seed=s, n=3)) for s in range(2)]
        rs = run_jobs(jobs, None, t, progress=False)
        test_eq(sorted(f.name for f in Path(t).iterdir()), ["t0.json", "t0.pt", "t1.json", "t1.pt"])
        test_eq("tensors" in json.loads((Path(t)/"t0.json").read_text()), False)
        back = run_jobs(jobs, None, t, progress=False)                              # read back: the same tensors
        for r, b in zip(rs, back): test_eq(b["tensors"]["x"], r["tensors"]["x"]); test_eq(b["cfg"], r["cfg"])
        test_ne(rs[0]["tensors"]["x"], rs[1]["tensors"]["x"])


def test_ray_launcher_matches_local():
    from dg_literate.core import skip
    try: import ray
    except ImportError: ray = None
    if ray is None: skip("Ray is not installed: pip install -e '.[ray]'")
    else:
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
        try:
            with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
                jobs = [Job(f"s{s}", toy_job, dict(seed=s, n=20_000)) for s in range(6)]
                run_jobs(jobs, 2.0, a, progress=False); run_jobs(jobs, 2.0, b, launcher="ray", progress=False)
                files = lambda d, pat="s*.json": {f.name: f.read_text() for f in Path(d).glob(pat)}
                test_eq(files(b), files(a))                                              # the same result files
                marker = Path(b)/"failed.marker"
                r = run_jobs(
                    [Job("f", toy_job, dict(seed=9, n=10, fail_once=str(marker)))],
                    2.0,
                    b,
                    launcher="ray",
                    progress=False,
                )
                # failed once, retried
                test_eq((marker.exists(), r[0]["x"]), (True, toy_job(dict(seed=9, n=10), 2.0, None)["x"]))
                for k in (3, 4, 5): (Path(b)/f"s{k}.json").unlink()                   # interrupted halfway
                stamp = {f.name: f.stat().st_mtime_ns for f in Path(b).glob("s*.json")}
                run_jobs(jobs, 2.0, b, launcher="ray", progress=False)
                # finished jobs not re-run
                test_eq({f.name: f.stat().st_mtime_ns for f in Path(b).glob("s[012].json")}, stamp)
                test_eq(files(b), files(a))
        finally: ray.shutdown()
