"""Tests exported from nbs/50_domainfusion.ipynb by `dg-export-tests`. DO NOT EDIT: edit the notebook."""

from dg_literate.domainfusion import *

from fastcore.test import *
import torch, torch.nn as nn, torch.nn.functional as F

def pseudo_image_literal(x0, p, y):
    "Eq. (1) one image at a time."
    return torch.stack([x0[i] * p[i, y[i]] for i in range(len(y))])

def ld_loss_literal(ldm, x, prompt_embeds, t, eps):
    "Eq. (2) one image at a time, with the full backward (the reference for the tests)."
    total = 0
    for i in range(len(x)):
        z = ldm.vae.encode(2 * x[i:i + 1] - 1).latent_dist.mean * ldm.scale
        abar = ldm.scheduler.alphas_cumprod[t[i]]
        z_t = abar.sqrt() * z + (1 - abar).sqrt() * eps[i:i + 1]
        e_hat = ldm.unet(z_t, t[i:i + 1], encoder_hidden_states=prompt_embeds[i:i + 1]).sample
        total = total + ((e_hat - eps[i:i + 1]) ** 2).mean()
    return total / len(x)

def style_content_split_literal(z, eps=1e-5):
    "Eq. (3) with loops over images and channels."
    B, C = z.shape[:2]
    mu, sigma, content = torch.zeros(B, C), torch.zeros(B, C), torch.zeros_like(z)
    for b in range(B):
        for c in range(C):
            v = z[b, c].flatten()
            mu[b, c] = v.sum() / len(v)
            sigma[b, c] = (((v - mu[b, c]) ** 2).sum() / len(v) + eps).sqrt()
            content[b, c] = (z[b, c] - mu[b, c]) / sigma[b, c]
    return torch.cat([mu, sigma], 1), content

def select_candidate_literal(style, content, styles, contents):
    "Eq. (4) with loops."
    i_s, j_c = [], []
    for b in range(len(style)):
        ds = [float(((styles[b, n] - style[b]) ** 2).sum().sqrt()) for n in range(styles.shape[1])]
        dc = [float(((contents[b, n] - content[b]) ** 2).sum().sqrt()) for n in range(contents.shape[1])]
        i_s.append(max(range(len(ds)), key=ds.__getitem__))
        j_c.append(min(range(len(dc)), key=dc.__getitem__))
    return torch.tensor(i_s), torch.tensor(j_c)


def test_pseudo_image_eq1_and_full_confidence():
    x0, y = torch.rand(5, 3, 8, 8), torch.tensor([0, 2, 1, 2, 0])
    p = torch.randn(5, 3).softmax(1)
    test_close(pseudo_image(x0, p, y), pseudo_image_literal(x0, p, y))
    # a fully confident model leaves the image unchanged
    test_eq(pseudo_image(x0, F.one_hot(y, 3).float(), y), x0)
    logits = 100 * F.one_hot(y, 3).float()  # ... also through a softmax that saturates
    test_eq(pseudo_image(x0, logits.softmax(1), y), x0)
    test_close(pseudo_image(x0, torch.zeros(5, 3), y), torch.zeros_like(x0))  # no confidence: a black image


def test_latent_distillation_gradient_only_through_x_theta():
    import torchvision
    from dg_literate.toyldm import load_ldm
    ldm = load_ldm("toyldm-tiny")
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )  # a small f_theta
    x0, y = torch.rand(3, 3, 64, 64), torch.tensor([0, 1, 2])
    c = ldm.encode_text(["circle", "square", "triangle"])
    t, eps = torch.tensor([100, 500, 900]), torch.randn(3, *ldm.encode(x0[:1]).shape[1:])  # latent-shaped
    for full in (True, False):
        p = model(x0).softmax(1); x = pseudo_image(x0, p, y)
        loss, mse = latent_distillation_loss(ldm, x, c, t, eps, full_backward=full)
        ref = ld_loss_literal(ldm, x, c, t, eps)
        test_close(mse.mean(), ref, eps=1e-5)                                     # the same Eq. (2) value
        g_theta = torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)
        test_eq(all(q.grad is None for q in list(ldm.vae.parameters()) + list(ldm.unet.parameters())), True)
        test_eq(any(g.abs().sum() > 0 for g in g_theta), True)                   # theta does get a gradient
        g_x = torch.autograd.grad(loss, x, retain_graph=True)[0]  # chain rule through the scalar p_y only
        g_py = (g_x * x0).flatten(1).sum(1)                                      # dL/dp_y = <dL/dx, x0>
        g_chain = torch.autograd.grad(
            p.gather(1, y[:, None]).squeeze(1), list(model.parameters()), grad_outputs=g_py, retain_graph=True
        )
        for a, b in zip(g_theta, g_chain): test_close(a, b, eps=1e-6)
        if full:  # the full backward is the literal gradient
            g_ref = torch.autograd.grad(ref, list(model.parameters()))
            for a, b in zip(g_theta, g_ref): test_close(a, b, eps=1e-6)
        x_det = pseudo_image(x0, p.detach(), y)  # p_y detached: no path to theta is left
        test_eq(latent_distillation_loss(ldm, x_det, c, t, eps, full_backward=full)[0].requires_grad, False)
    # the SDS surrogate: its gradient in z is g = 2 (eps_hat - eps) / (B n), the U-Net Jacobian dropped; checked through x: J_E^T g
    xr = x0.clone().requires_grad_(True)
    z = ldm_latents(ldm, xr)
    abar = ldm.scheduler.alphas_cumprod[t].view(3, 1, 1, 1)
    e_hat = ldm.unet(abar.sqrt() * z + (1 - abar).sqrt() * eps, t, encoder_hidden_states=c).sample
    g = 2 * (e_hat - eps).detach() / (3 * e_hat[0].numel())
    expected = torch.autograd.grad(z, xr, grad_outputs=g)[0]
    loss, _ = latent_distillation_loss(ldm, xr, c, t, eps)
    test_close(torch.autograd.grad(loss, xr)[0], expected, eps=1e-7)
    for full in (True, False):  # DreamFusion's sum over latent elements: n x the mean's
        gm = torch.autograd.grad(latent_distillation_loss(ldm, xr, c, t, eps, full_backward=full)[0], xr)[0]
        gs = torch.autograd.grad(
            latent_distillation_loss(ldm, xr, c, t, eps, full_backward=full, reduction="sum")[0], xr
        )[0]
        test_close(gs, gm * eps[0].numel(), eps=1e-6 * eps[0].numel())
    test_fail(lambda: latent_distillation_loss(ldm, xr, c, t, eps, reduction="max"), contains="'mean'")
    ldm.unet.requires_grad_(True)                                                # a trainable LDM is refused
    test_fail(lambda: latent_distillation_loss(ldm, x0, c, t, eps), contains="must be frozen")
    ldm.unet.requires_grad_(False)


def test_latent_distillation_through_a_stable_diffusion_folder():
    import tempfile
    from pathlib import Path
    from dg_literate.toyldm import load_ldm, tiny_sd_folder
    with tempfile.TemporaryDirectory() as tmp:  # the same loss through diffusers' SD parts (tiny, random)
        sd = load_ldm(str(tiny_sd_folder(Path(tmp)/"sd")))
        w = torch.zeros(2, 3, requires_grad=True)
        x0, y = torch.rand(2, 3, 48, 48), torch.tensor([0, 2])
        loss, mse = latent_distillation_loss(
            sd,
            pseudo_image(x0, (w + torch.eye(3)[:2]).softmax(1), y),
            sd.encode_text(["circle", "star"]),
            generator=torch.Generator().manual_seed(0),
        )
        loss.backward()
        test_eq(mse.shape, (2,)); test_eq(w.grad.abs().sum() > 0, True)
        test_eq(all(q.grad is None for q in sd.unet.parameters()), True)


def test_style_content_split_and_recombination():
    torch.manual_seed(0)
    z = torch.randn(4, 8, 8, 8) * 3 + 1
    s, c = style_content_split(z)
    test_eq(s.shape, (4, 16)); test_eq(c.shape, z.shape)
    s_ref, c_ref = style_content_split_literal(z)
    test_close(s, s_ref, eps=1e-5); test_close(c, c_ref, eps=1e-5)
    test_close(c.mean((2, 3)), torch.zeros(4, 8), eps=1e-5)
    test_close(c.std((2, 3), unbiased=False), torch.ones(4, 8), eps=1e-3)
    test_close(style_content_combine(s, c), z, eps=1e-5)  # split + recombine gives the features back
    # a swapped style carries its statistics
    test_close(style_content_combine(s[[1, 0, 3, 2]], c).mean((2, 3)), z.mean((2, 3))[[1, 0, 3, 2]], eps=1e-5)
    from dg_literate.toyldm import load_ldm
    ldm = load_ldm("toyldm-tiny")  # ... and, through the LDM, the image back
    x = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)
    z = ldm.encode(x)
    assert (
        ldm.decode(style_content_combine(*style_content_split(z))).int() - ldm.decode(z).int()
    ).abs().max() <= 1  # float round-off may flip a rounding


def test_mode_encoder_shapes():
    enc = ModeEncoder("toynet")
    f = enc(torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8))
    test_eq(f.shape, (2, 256, 4, 4)); test_eq(any(q.requires_grad for q in enc.parameters()), False)
    test_fail(lambda: ModeEncoder("/nonexistent.pth"), contains="not found")


def test_select_candidate_picks_farthest_style_closest_content():
    torch.manual_seed(0)
    s, c = torch.randn(6, 16), torch.randn(6, 8, 4, 4)
    S, C = torch.randn(6, 5, 16), torch.randn(6, 5, 8, 4, 4)
    i, j = select_candidate(s, c, S, C)
    i_ref, j_ref = select_candidate_literal(s, c, S, C)
    test_eq(i, i_ref); test_eq(j, j_ref)
    # planted: candidate 2 has a far style, candidate 3 the input's content
    S2, C2 = s[:, None].repeat(1, 4, 1), c[:, None].repeat(1, 4, 1, 1, 1) + 5
    S2[:, 2] += 10; C2[:, 3] = c
    i, j = select_candidate(s, c, S2, C2)
    test_eq(i, torch.full((6,), 2)); test_eq(j, torch.full((6,), 3))
    # candidate 1 only rescales the style: l2 far, cosine 0
    S3 = s[:, None].repeat(1, 3, 1) * torch.tensor([1., 5., 1.])[None, :, None]
    S3[:, 2] = -s  # candidate 2 points the other way: the cosine pick
    test_eq(select_candidate(s, c, S3, C2[:, :3], "l2")[0], torch.full((6,), 1))
    test_eq(select_candidate(s, c, S3, C2[:, :3], "cosine")[0], torch.full((6,), 2))
    test_eq(select_candidate(s, c, S2, C2, "cosine")[1], torch.full((6,), 3))
    test_fail(lambda: select_candidate(s, c, S2, C2, "l1"), contains="'l2' or 'cosine'")


def test_online_augment_shapes_and_identity():
    from dg_literate.toyldm import load_ldm
    ldm = load_ldm("toyldm-tiny")
    x, y = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8), torch.tensor([0, 1, 2])
    ps = augment_prompts(
        y, ["circle", "square", "triangle"], ["photo", "sketch"], 4, generator=torch.Generator().manual_seed(0)
    )
    test_eq(len(ps), 3); test_eq(len(ps[0]), 4); test_eq(ps[1][0].endswith("square"), True)
    a = online_augment(ldm, x, ps, strength=0.5, steps=4, generator=torch.Generator().manual_seed(0))
    test_eq(a.images.shape, x.shape)
    test_eq(a.candidates.shape, (3, 4, 3, 32, 32))
    test_eq(a.images.dtype, torch.uint8)
    class _Echo:  # an "LDM" whose img2img returns its input: every candidate is the input itself
        def __init__(self, l): self.l, self.resolution = l, l.resolution
        def img2img(self, im, *a, **k): return im.clone()
        def encode(self, im): return self.l.encode(im)
        def decode(self, z, size=None): return self.l.decode(z, size)
    m = online_augment(
        ldm, x, ps, steps=4, generator=torch.Generator().manual_seed(0), encoder=ModeEncoder(), distance="cosine"
    )
    test_eq(m.images.shape, x.shape); test_eq(m.style_idx.shape, (3,))
    e = online_augment(_Echo(ldm), x, ps, steps=4)
    # recombining the input's own style and content gives its reconstruction back
    assert (e.images.int() - ldm.decode(ldm.encode(x), 32).int()).abs().max() <= 1
    gen, gy = offline_generate(
        ldm, x, y, ["circle", "square", "triangle"], ["photo"], per_image=2, steps=4, progress=False
    )
    test_eq(gen.shape, (6, 3, 32, 32)); test_eq(gy, torch.tensor([0, 0, 1, 1, 2, 2]))


def test_train_df_each_method_and_resume():
    import dataclasses, tempfile
    from pathlib import Path
    from dg_literate.data import get_dataset
    from dg_literate.toyldm import load_ldm
    ds, ldm = get_dataset("toyworld", n_per_domain=8, seed=0), load_ldm("toyldm-tiny")
    base = DFConfig(
        image_size=32,
        epochs=1,
        batch_size=8,
        ld_batch=4,
        syn_batch=4,
        syn_size=4,
        n_candidates=2,
        every=1,
        offline_per_image=2,
        steps=2,
    )
    counts = {}
    for m in ("erm", "offline", "ld", "aug", "df", "cp"):
        r = train_df(ds, ["photo", "art_painting"], ["sketch"], dataclasses.replace(base, method=m, cp_weight=0.1),
                     None if m in ("erm", "cp") else ldm, progress=False)
        counts[m] = r["n_generated"]; test_eq(0 <= r["sketch"] <= 100, True); test_eq(r["val"], max(r["history"]))
        test_eq(r["ld_mse"] > 0, m in ("ld", "df"))
    test_eq(counts, dict(erm=0, offline=2 * r["n_source"], ld=0, aug=4 * 2, df=4 * 2, cp=0))   # M x N per refresh
    base = dataclasses.replace(base, epochs=2)
    test_fail(lambda: train_df(ds, ["photo"], ["sketch"], DFConfig(method="df"), None), contains="needs an LDM")
    test_fail(lambda: train_df(ds, ["photo"], ["sketch"], DFConfig(method="dfx"), ldm), contains="unknown method")
    cfg = dataclasses.replace(base, method="df", split="encoder", distance="cosine")
    with tempfile.TemporaryDirectory() as t:  # a resumed run equals an uninterrupted one
        a = train_df(ds, ["photo", "art_painting"], ["sketch"], cfg, ldm, progress=False)
        train_df(
            ds,
            ["photo", "art_painting"],
            ["sketch"],
            cfg,
            ldm,
            progress=False,
            ckpt=Path(t) / "b.pt",
            stop_after=1,
        )
        b = train_df(ds, ["photo", "art_painting"], ["sketch"], cfg, ldm, progress=False, ckpt=Path(t)/"b.pt")
    for k in ("sketch", "val", "history", "last", "n_generated", "ld_mse"): test_eq(a[k], b[k])
    test_eq(len(b["snapshots"]), 2)


def test_ld_grad_ratio_scales_with_reduction():
    from dg_literate.toynet import backbone
    from dg_literate.toyldm import load_ldm
    ldm = load_ldm("toyldm-tiny"); torch.manual_seed(0)
    net = backbone("resnet18", "", 3)
    x, y = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8), torch.randint(3, (8,))
    c = ldm.encode_text(["circle", "square", "triangle"])
    r_mean = ld_grad_ratio(net, ldm, x, y, c, n=4, reps=2, generator=torch.Generator().manual_seed(0))
    r_sum = ld_grad_ratio(
        net, ldm, x, y, c, n=4, reduction="sum", reps=2, generator=torch.Generator().manual_seed(0)
    )
    z = ldm.encode(x[:1])
    test_close(r_sum / r_mean, z[0].numel(), eps=1e-3 * z[0].numel())            # the sum is c*h*w times the mean
    assert r_mean > 0


def test_confidence_penalty_is_negative_entropy():
    from dg_literate.toynet import backbone
    from dg_literate.train import normalize
    import math
    from types import SimpleNamespace
    torch.manual_seed(0); logits, yb = torch.randn(6, 7), torch.randint(0, 7, (6,))
    hook = ConfidencePenaltyHook(0.5, n=4)
    H = [-sum(float(p) * math.log(float(p)) for p in row.softmax(0)) for row in logits[:4]]   # per image, literally
    test_close(hook.loss(SimpleNamespace(logits=logits, yb=yb)), -0.5 * sum(H) / 4, eps=1e-5)
    net = backbone("resnet18", "", 7); x, y = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8), torch.arange(8) % 7
    r = cp_grad_ratio(net, x, y, n=4)
    logits = net(normalize(x, "cpu")); params = list(net.parameters())
    gn = lambda l: torch.cat([v.flatten() for v in torch.autograd.grad(l, params, retain_graph=True)]).norm()
    b = 0.3 / r                                                         # the beta that makes the ratio 0.3
    h = ConfidencePenaltyHook(b, n=4).loss(SimpleNamespace(logits=logits, yb=y))
    test_close(gn(h) / gn(F.cross_entropy(logits, y)), 0.3, eps=1e-4)


def test_run_df_grid_resumes():
    import tempfile
    from pathlib import Path
    from dg_literate.data import get_dataset
    ds = get_dataset("toyworld", n_per_domain=14, seed=0)
    base = DFConfig(image_size=32, epochs=1, batch_size=8)
    with tempfile.TemporaryDirectory() as d:
        jobs = [("erm", ["photo"], ["sketch"], 0), ("erm", ["photo"], ["sketch"], 0, dict(lr=0.01))]
        r1 = run_df_grid(ds, jobs, base, "toyldm-tiny", d, progress=False)
        test_eq(
            sorted(p.name for p in Path(d).glob("*.json")),
            ["erm-sketch-seed0-lr0.01.json", "erm-sketch-seed0.json"],
        )
        r2 = run_df_grid(ds, jobs, base, "toyldm-tiny", d, progress=False)            # read back
        test_eq([r["sketch"] for r in r1], [r["sketch"] for r in r2]); test_eq(r2[1]["cfg"]["lr"], 0.01)
        test_fail(
            lambda: run_df_grid(
                ds, jobs[:1], DFConfig(image_size=32, epochs=2, batch_size=8), "toyldm-tiny", d, progress=False
            ),
            contains="another config",
        )
