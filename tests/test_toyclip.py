"""Tests exported from nbs/04_toyclip.ipynb by `dg-export-tests`. DO NOT EDIT: edit the notebook."""

from dg_literate.toyclip import *

from fastcore.test import *
from fastcore.xtras import modified_env
import dataclasses, json, tempfile, numpy as np, torch
from pathlib import Path
from dg_literate.toyworld import ToyWorld, TEMPLATES, DOMAINS, ALL_DOMAINS, IMAGE_TYPES


def test_pretrain_stream_and_resume():
    cfg = dataclasses.replace(TOYCLIP_TINY, steps=6, batch_size=32, warmup=2)
    x0, c0 = pretrain_batch(cfg, 3); x1, c1 = pretrain_batch(cfg, 3)
    test_eq(x0, x1)
    test_eq(c0, c1)
    test_eq(x0.shape, (32, 3, 64, 64))
    assert (pretrain_batch(cfg, 4)[0] != x0).any()
    caps = sum((pretrain_batch(cfg, s)[1] for s in range(20)), [])
    photo_share = np.mean([" photo " in f" {c} " for c in caps]) / sum(w for t, w in TEMPLATES if "{type}" in t)
    assert 0.25 < photo_share < 0.6, photo_share  # ~50% photos, through the captions that name the type
    with tempfile.TemporaryDirectory() as t:
        full, _ = train_toyclip(cfg, progress=False)
        part, _ = train_toyclip(cfg, ckpt=Path(t)/"ck.pt", progress=False, stop_at=4, ckpt_every=2)
        resumed, log = train_toyclip(cfg, ckpt=Path(t)/"ck.pt", progress=False)
        test_eq(len(log["loss"]), 6)
        for (n, a), b in zip(full.state_dict().items(), resumed.state_dict().values()): test_close(a, b, eps=1e-5)


def test_distill_resume_and_frozen_text():
    cfg = dataclasses.replace(TOYCLIP_VIT, name="toyclip-vit-test", steps=4, batch_size=8, warmup=1)
    with tempfile.TemporaryDirectory() as t, modified_env(DG_LITERATE_CACHE=t):
        teacher = teacher_model(cfg); s = student_from_teacher(cfg, teacher)
        for k, v in teacher.state_dict().items():
            if not k.startswith("visual."): test_eq(s.state_dict()[k], v)                # the teacher's text tower
        assert all(p.requires_grad == n.startswith("visual.") for n, p in s.named_parameters())
        full, log = distill_toyclip(cfg, progress=False, curve_every=2, n_curve=7)
        test_eq([c["step"] for c in log["curve"]], [0, 2, 4]); test_eq(len(log["loss"]), 4)
        distill_toyclip(cfg, ckpt=Path(t)/"ck.pt", progress=False, stop_at=2, ckpt_every=2, curve_every=0)
        resumed, log2 = distill_toyclip(cfg, ckpt=Path(t)/"ck.pt", progress=False, curve_every=0)
        test_eq(log2["loss"], log["loss"])
        for (n, a), b in zip(full.state_dict().items(), resumed.state_dict().values()): test_close(a, b, eps=1e-5)


def test_toyclip_loader_roundtrip():
    from dg_literate.clip import load_clip
    with tempfile.TemporaryDirectory() as t, modified_env(DG_LITERATE_CACHE=t):
        folder = model_dir("toyclip-tiny")
        assert (folder/"open_clip_model.safetensors").exists() and (folder/"MANIFEST.json").exists()
        c = load_clip("toyclip-tiny", device="cpu")
        assert c.key.startswith("local-dir:")
        w = ToyWorld(7, seed=5); img = w.image("photo", 2)
        test_close(c.preprocess(img), to_clip_input(w.images("photo")[2:3])[0], eps=1e-5)
        m, _ = train_toyclip(TOYCLIP_TINY, progress=False)               # same seed: the same weights, up to fp16
        with torch.no_grad():
            a, b = c.model.encode_image(c.preprocess(img)[None]), m.encode_image(
                to_clip_input(w.images("photo")[2:3])
            )
            test_close(a, b, eps=2e-2 * b.abs().max())
    with tempfile.TemporaryDirectory() as t, modified_env(DG_LITERATE_WEIGHTS=t):
        test_fail(lambda: load_clip("toyclip", device="cpu"), contains="dg-reproduce build toyclip")
    test_fail(lambda: model_dir("toyclip-huge"), contains="unknown toy CLIP")
    # compact shipping
    with tempfile.TemporaryDirectory() as t, modified_env(DG_LITERATE_WEIGHTS=t, DG_LITERATE_CACHE=t + "/cache"):
        cfg = dataclasses.replace(TOYCLIP_TINY, name="toyclip-vit", steps=3, batch_size=16)
        m, log = train_toyclip(cfg, progress=False)
        save_toyclip(m, cfg, Path(t)/"toyclip-vit", log)
        man = json.loads((Path(t) / "toyclip-vit" / "MANIFEST.json").read_text())
        assert 0 < man["trained_rows"] < 200, man
        import dg_literate.toyclip as tc
        tc.TOYCLIPS["toyclip-vit"] = cfg
        try: c = load_clip("toyclip-vit", device="cpu")
        finally: tc.TOYCLIPS["toyclip-vit"] = TOYCLIP_VIT
        # every row back, up to fp16
        test_close(c.model.token_embedding.weight, m.token_embedding.weight, eps=1e-3)
        test_close(
            c.model.encode_text(c.tokenizer(["a photo of a star"])),
            m.encode_text(c.tokenizer(["a photo of a star"])),
            eps=2e-2,
        )


def test_fresh_interpreter_loads_toyclip():
    import os, subprocess, sys
    load = "from dg_literate.clip import load_clip; print(type(load_clip('toyclip-tiny', device='cpu').model).__name__)"
    imports = "import dg_literate.clip, dg_literate.toyclip, dg_literate.toyworld, dg_literate.toyldm, dg_literate.toynet"
    with tempfile.TemporaryDirectory() as t:
        r = subprocess.run(
            [sys.executable, "-c", load],
            capture_output=True,
            text=True,
            env={**os.environ, "DG_LITERATE_CACHE": t},
        )
        assert r.returncode == 0 and r.stdout.strip() == "CLIP", r.stderr[-800:]
        fresh = Path(t)/"fresh"
        r = subprocess.run(
            [sys.executable, "-c", imports],
            capture_output=True,
            text=True,
            env={**os.environ, "DG_LITERATE_CACHE": str(fresh)},
        )
        assert r.returncode == 0, r.stderr[-800:]
        test_eq([p for p in fresh.rglob("*") if p.is_file()], [])                 # importing writes nothing


def test_shipped_toyclip_gates_small():
    from dg_literate.clip import load_clip
    from dg_literate.core import ShippedWeightsError
    try: clip = load_clip("toyclip", device="cpu")
    except ShippedWeightsError as e: raise AssertionError(f"toyclip must ship with the package: {e}")
    g = toyclip_gates(clip, ToyWorld(70, seed=0, domains=ALL_DOMAINS))
    assert g["photo"] >= 80 and g["mean4"] >= 70 and g["domain_mean"] >= 80, g
    assert any(g["zeroshot"]["photo"] - g["zeroshot"][d] >= 5 and g["zeroshot"][d] > 25 for d in ALL_DOMAINS), g


def test_shipped_toyclip_vit_gates_small():
    import subprocess, sys
    code = ("import json; from dg_literate.clip import load_clip; from dg_literate.toyclip import toyclip_gates; "
            "from dg_literate.toyworld import ToyWorld, ALL_DOMAINS; "
            "g = toyclip_gates(load_clip('toyclip-vit', device='cpu'), ToyWorld(70, seed=0, domains=ALL_DOMAINS)); "
            "print(json.dumps(g))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    g = json.loads(r.stdout.strip().splitlines()[-1])                     # a fresh interpreter: nothing imported first
    assert g["photo"] >= 80 and g["mean4"] >= 70 and g["domain_mean"] >= 80, g
    assert any(g["zeroshot"]["photo"] - g["zeroshot"][d] >= 5 and g["zeroshot"][d] > 25 for d in ALL_DOMAINS), g
