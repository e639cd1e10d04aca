"""Tests exported from nbs/05_toyldm.ipynb by `dg-export-tests`. DO NOT EDIT: edit the notebook."""

from dg_literate.toyldm import *

from fastcore.test import *
from dg_literate.core import known_failure
import torch


def test_perceptual_distance_is_lpips_eq1():
    pd = Perceptual("toynet"); g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 3, 64, 64, generator=g) * 2 - 1, torch.rand(3, 3, 64, 64, generator=g) * 2 - 1
    test_close(pd(a, a), torch.zeros(3), eps=1e-6)
    lit = torch.zeros(3)                                       # Eq. 1, literally: per layer, position and channel
    for fa, fb in zip(pd.features(a), pd.features(b)):
        for i in range(3):
            C, H, W = fa.shape[1:]
            for h in range(H):
                for w in range(W):
                    ua, ub = fa[i, :, h, w], fb[i, :, h, w]
                    test_close(ua.norm(), 1.0, eps=1e-4)
                    lit[i] += sum((ua[c] - ub[c]) ** 2 for c in range(C)) / (H * W)
    test_close(pd(a, b), lit, eps=1e-4)
    assert (pd(a, b) > 0.1).all() and not any(p.requires_grad for p in pd.parameters())


def test_toyldm_roundtrip_and_img2img():
    import tempfile, shutil
    from pathlib import Path
    ldm = load_ldm("toyldm-tiny")  # built on first use, loaded with from_pretrained
    x, caps = ldm_batch(TOYLDM_TINY, 0)
    test_eq(x.shape[1:], (3, 64, 64))
    test_eq(ldm.encode(x[:4]).shape, (4, 4, 16, 16))
    # any image size: resized to 64 px and back
    test_eq(ldm.img2img(x[:2, :, ::2, ::2], caps[:2], 0.5, 3).shape, (2, 3, 32, 32))
    out = ldm.img2img(x[:4], caps[:4], strength=0.5, steps=4)
    test_eq(out.shape, (4, 3, 64, 64)); test_eq(out.dtype, torch.uint8)
    test_eq(
        ldm.img2img(x[:2], caps[:2], 0.5, 4, generator=torch.Generator().manual_seed(1)),
        ldm.img2img(x[:2], caps[:2], 0.5, 4, generator=torch.Generator().manual_seed(1)),
    )
    test_eq(ldm.img2img(None, caps[:2], steps=3).shape, (2, 3, 64, 64))             # text-to-image
    with tempfile.TemporaryDirectory() as t:  # a copied folder loads by path
        shutil.copytree(ldm_dir("toyldm-tiny"), Path(t) / "m")
        test_eq(load_ldm(str(Path(t) / "m")).encode(x[:1]).shape, (1, 4, 16, 16))
        (Path(t) / "empty").mkdir()
        test_fail(lambda: load_ldm(str(Path(t) / "empty")), contains="neither a toyldm folder")


def test_img2img_with_a_noise_oracle_returns_its_input():
    ldm = load_ldm("toyldm-tiny"); x = ldm_batch(TOYLDM_TINY, 0)[0][:3]
    test_eq(ldm.scheduler.config.clip_sample, False)
    z0, seen = ldm.encode(x), []
    # what img2img draws with this generator
    noise = torch.randn(z0.shape, generator=torch.Generator().manual_seed(7))
    # the oracle (batch doubled for guidance)
    ldm.eps = lambda z, t, c: noise.repeat(len(z) // len(noise), 1, 1, 1)
    dec = ldm.decode
    ldm.decode = lambda z, size=None: seen.append(z) or dec(z, size)
    ldm.img2img(x, ["a sketch of a star"] * 3, strength=0.5, steps=10, generator=torch.Generator().manual_seed(7))
    test_close(seen[0], z0, eps=1e-3)
    from diffusers import DDIMScheduler
    # v1's scheduler: the clamp destroys the latent
    ldm.scheduler = DDIMScheduler.from_config(ldm.scheduler.config, clip_sample=True); seen.clear()
    ldm.img2img(x, ["a sketch of a star"] * 3, strength=0.5, steps=10, generator=torch.Generator().manual_seed(7))
    assert (seen[0] - z0).pow(2).mean().sqrt() > 0.05


def test_stable_diffusion_path_on_a_tiny_folder():
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as t:  # the real loading code, on a tiny SD folder the test makes
        sd = load_ldm(str(tiny_sd_folder(Path(t)/"sd")))
        test_eq(type(sd).__name__, "SDImg2Img"); test_eq(sd.resolution, 32)
        x = torch.randint(0, 256, (2, 3, 48, 48), dtype=torch.uint8)
        out = sd.img2img(
            x,
            ["a circle", "a star"],
            strength=0.5,
            steps=4,
            guidance=3.0,
            generator=torch.Generator().manual_seed(0),
        )
        test_eq(out.shape, (2, 3, 48, 48)); test_eq(out.dtype, torch.uint8)
        z = sd.encode(x); test_eq(z.shape, (2, 4, 16, 16)); test_eq(sd.decode(z, 48).shape, (2, 3, 48, 48))
        test_eq(sd.encode_text(["a circle"]).shape, (1, 16, 32))
        test_eq(any(p.requires_grad for p in sd.unet.parameters()), False)
        test_eq((sd.unet.dtype, sd.pipe.vae.use_slicing), (torch.float32, True))  # float32 on CPU; VAE slicing on
        h = load_ldm(str(Path(t)/"sd"), dtype=torch.float16, slicing=False)        # what CUDA gets by default
        test_eq((h.unet.dtype, h.vae.dtype, h.pipe.vae.use_slicing), (torch.float16, torch.float16, False))


def test_shipped_toyldm_gates_small():
    from dg_literate.core import ShippedWeightsError
    try: ldm = load_ldm("toyldm")
    except ShippedWeightsError as e: raise AssertionError(f"toyldm must ship with the package: {e}")
    r = ldm_gates(ldm, n=28, steps=10)
    # the three gates toyldm v3 passes (section 5), at looser bars for the small sample
    assert r["recon_ratio"] >= 0.85 and r["img2img_class_ratio"] >= 0.65 and r["domain_t2i"] >= 55, r
    # the two it misses (measured in section 5): reported as expected failures until a rebuild passes them
    fails = {k: round(r[k], 2) for k, bar in [("class_t2i", 55), ("domain_img2img", 35)] if r[k] < bar}
    if fails: known_failure(f"toyldm v3 misses two gates on a small sample: {fails}")
