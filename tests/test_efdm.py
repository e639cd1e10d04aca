"""Tests exported from nbs/10_efdm.ipynb by `dg-export-tests`. DO NOT EDIT: edit the notebook."""

from dg_literate.efdm import *

from fastcore.test import *
import numpy as np, torch, torch.nn as nn
from dg_literate.efdm import _imnorm, _imdenorm                          # private helpers the tests use

def adain_literal(x, y, eps=1e-5):
    o = torch.empty_like(x)
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            xs, ys = x[b, c].flatten(), y[b, c].flatten()
            sx, sy = (xs.var() + eps).sqrt(), (ys.var() + eps).sqrt()
            o[b, c] = sy * (x[b, c] - xs.mean()) / sx + ys.mean()
    return o

def hm_literal(x, y):
    o = torch.empty_like(x)
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            xs, ys = x[b, c].flatten().double().numpy(), y[b, c].flatten().double().numpy()
            xv, inv, xc = np.unique(xs, return_inverse=True, return_counts=True)
            yv, yc = np.unique(ys, return_counts=True)
            Fx, Fy = np.cumsum(xc) / xs.size, np.cumsum(yc) / ys.size   # CDFs at the distinct values
            o[b, c] = torch.from_numpy(np.interp(Fx, Fy, yv)[inv].reshape(x.shape[2:]))
    return o

def ehm_literal(x, y):
    o = torch.empty_like(x)
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            tau = x[b, c].flatten().argsort(stable=True)                  # x[tau[0]] <= x[tau[1]] <= ...
            ysorted = y[b, c].flatten().sort(stable=True).values         # y[kappa[0]] <= ...
            row = torch.empty(tau.numel(), dtype=x.dtype)
            for i in range(tau.numel()): row[tau[i]] = ysorted[i]        # o_{tau_i} = y_{kappa_i}
            o[b, c] = row.view(x.shape[2:])
    return o

def efdmix_literal(x, lam, perm):
    o = torch.empty_like(x)
    for b in range(x.shape[0]):
        l = lam.flatten()[b]
        o[b] = l * x[b] + (1 - l) * ehm_literal(x[b:b+1], x[perm[b]:perm[b]+1])[0]
    return o

def mixstyle_literal(x, lam, perm, eps=1e-6):
    o = torch.empty_like(x)
    for b in range(x.shape[0]):
        p, l = perm[b], lam.flatten()[b]
        for c in range(x.shape[1]):
            mu, mu2 = x[b, c].mean(), x[p, c].mean()
            sig, sig2 = (x[b, c].var() + eps).sqrt(), (x[p, c].var() + eps).sqrt()
            o[b, c] = (l * sig + (1 - l) * sig2) * (x[b, c] - mu) / sig + l * mu + (1 - l) * mu2
    return o


def test_adain_matches_literal_and_moments():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(3, 4, 5, 6, generator=g), torch.randn(3, 4, 7, 7, generator=g) * 3 + 1
    o = adain(x, y)
    test_close(o, adain_literal(x, y), eps=1e-5)
    test_close(o.flatten(2).mean(-1), y.flatten(2).mean(-1), eps=1e-4)        # AdaIN matches the mean ...
    test_close(o.flatten(2).std(-1), y.flatten(2).std(-1), eps=1e-3)          # ... and the std of y


def test_hm_matches_literal():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(2, 3, 6, 6, generator=g), torch.randn(2, 3, 5, 5, generator=g).exp()
    test_close(histogram_matching(x, y), hm_literal(x, y), eps=1e-5)
    x = torch.relu(x); y = torch.relu(y - 1.5)                                 # ties (ReLU zeros) on both sides
    test_close(histogram_matching(x, y), hm_literal(x, y), eps=1e-5)


def test_efdm_sort_equivalence():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(3, 4, 5, 5, generator=g), torch.randn(3, 4, 5, 5, generator=g) * 2 + 3
    o = efdm(x, y)
    test_eq(o.flatten(2).sort(-1).values, y.flatten(2).sort(-1).values)           # exactly y's multiset of values
    test_eq(o.flatten(2).argsort(-1), x.flatten(2).argsort(-1))                  # in x's rank order
    test_eq(o, ehm_literal(x, y))                                                # = the literal EHM
    xr = x.clone().requires_grad_(True); w = torch.randn_like(x)
    (efdm(xr, y) * w).sum().backward()
    test_eq(xr.grad, w)                                                          # d efdm / dx = identity


def test_efdm_ties_equal_inputs_and_sizes():
    g = torch.Generator().manual_seed(3)
    x = torch.relu(torch.randn(2, 3, 6, 6, generator=g)); y = torch.randn(2, 3, 6, 6, generator=g)
    o = efdm(x, y)
    test_eq(o.flatten(2).sort(-1).values, y.flatten(2).sort(-1).values)  # ties in x: still y's exact values
    test_eq(efdm(y, y), y)  # matching a map to itself is the identity
    test_eq(efdm(x, x), x)                                                       # even with ties
    y2 = torch.randn(2, 3, 9, 7, generator=g)                                    # m = 63 != n = 36
    q = torch.quantile(y2.flatten(2), torch.linspace(0, 1, 36), dim=-1).permute(1, 2, 0)
    test_close(efdm(x, y2).flatten(2).sort(-1).values, q, eps=1e-5)              # y's quantiles, documented rule
    test_fail(lambda: efdm(x, torch.randn(2, 4, 6, 6)), contains="same batch and channel")


def test_efdmix_and_mixstyle_match_literal():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(4, 3, 5, 5, generator=g); perm = torch.tensor([2, 3, 0, 1])
    lam = torch.distributions.Beta(0.1, 0.1).sample((4, 1, 1, 1))
    test_close(efdmix(x, lam, perm), efdmix_literal(x, lam, perm), eps=1e-5)
    test_close(mixstyle(x, lam, perm), mixstyle_literal(x, lam, perm), eps=1e-5)
    test_close(efdmix(x, torch.ones(4, 1, 1, 1), perm), x, eps=1e-6)            # lam = 1: x itself
    # lam = 0: EFDM to the partner
    test_close(efdmix(x, torch.zeros(4, 1, 1, 1), perm), efdm(x, x[perm]), eps=1e-6)
    # MixStyle at 0 is AdaIN
    test_close(mixstyle(x, torch.zeros(4, 1, 1, 1), perm), adain(x, x[perm], eps=1e-6), eps=1e-4)
    xr = x.clone().requires_grad_(True); w = torch.randn_like(x)
    (efdmix(xr, lam, torch.arange(4)) * w).sum().backward()  # partner = itself: value x; gradient w through x ...
    test_close(xr.grad, (2 - lam) * w, eps=1e-5)  # ... plus (1-lam) w through the partner's sorted values


def test_style_layers_train_only():
    import torchvision
    torch.manual_seed(0)
    x = torch.randn(8, 4, 6, 6)
    for L in (EFDMix(p=1.0), MixStyle(p=1.0), EFDMix(p=1.0, mix="crossdomain")):
        L.train(); o = L(x)
        assert not torch.equal(o, x)                                            # mixes in training
        L.eval(); test_eq(L(x), x)                                              # identity at inference
    test_eq(EFDMix(p=0.0).train()(x), x)                                        # p = 0: never
    pp = EFDMix(mix="crossdomain").partners(8, "cpu")
    assert (pp[:4] >= 4).all() and (pp[4:] < 4).all()                           # partners from the other half
    test_fail(lambda: EFDMix(mix="domain"), contains="random")
    m = add_style_layers(torchvision.models.resnet18(num_classes=7), lambda: EFDMix())
    test_eq([type(getattr(m, s)[1]).__name__ for s in ("layer1", "layer2", "layer3")], ["EFDMix"] * 3)
    test_eq(m(torch.randn(2, 3, 64, 64)).shape, (2, 7))
    perm, lam = torch.tensor([1, 0, 3, 2, 5, 4, 7, 6]), torch.full((8, 1, 1, 1), 0.3)
    # the HM ablation's value
    test_close(hmmix(x, lam, perm), 0.3 * x + 0.7 * histogram_matching(x, x[perm]), eps=1e-5)
    xc = torch.randn(8, 4, 6, 6).round()                                        # ties: HM and EHM differ
    assert not torch.allclose(hmmix(xc, lam * 0, perm), efdmix(xc, lam * 0, perm))
    torch.manual_seed(3); sw = EFDMix(p=1.0, swap=True).train()(x)
    torch.manual_seed(3); _ = torch.rand(()); _ = torch.distributions.Beta(0.1, 0.1).sample((8, 1, 1, 1))
    perm3 = torch.randperm(8)                                                   # the layer's draws, replayed
    test_close(sw, efdm(x, x[perm3]), eps=1e-5)  # swap: EFDM to the partner (lambda 0)


def test_style_hook_equals_style_layers():
    import copy, torchvision
    torch.manual_seed(0); base = torchvision.models.resnet18(num_classes=7)
    x = torch.randn(8, 3, 32, 32)
    for method, Layer in (("efdmix", EFDMix), ("mixstyle", MixStyle), ("hmmix", HMMix)):
        for mix in ("random", "crossdomain"):
            # the layers inserted
            a = add_style_layers(copy.deepcopy(base), lambda: Layer(p=1.0, alpha=0.1, mix=mix))
            b = StyleMixHook(method, p=1.0, alpha=0.1, mix=mix).install(copy.deepcopy(base))     # the hook
            a.train(); b.train()
            torch.manual_seed(1); oa = a(x); torch.manual_seed(1); ob = b(x)
            test_close(oa, ob, eps=1e-6)  # the same mixing, draw for draw
            a.eval(); b.eval(); test_close(a(x), b(x), eps=1e-6)
            fresh = StyleMixHook(method, p=1.0, mix=mix).install(copy.deepcopy(base)).eval()
            test_close(fresh(x), copy.deepcopy(base).eval()(x), eps=1e-6)          # identity at test time
        test_eq(set(b.state_dict()), set(base.state_dict()))  # still a plain torchvision ResNet


def test_train_dg_seeded():
    from dg_literate.toyworld import ToyWorld
    tw = ToyWorld(56, seed=5)
    cfg = DGConfig(method="efdmix", epochs=2, batch_size=16, image_size=32, seed=0)
    r = train_dg(tw, ["photo", "cartoon", "art_painting"], ["sketch"], cfg, progress=False)
    assert (
        set(r) == {"val", "epoch", "seconds", "last", "sketch"}
        and 0 <= r["sketch"] <= 100
        and 1 <= r["epoch"] <= 2
    )
    r2 = train_dg(tw, ["photo", "cartoon", "art_painting"], ["sketch"], cfg, progress=False)
    test_eq(r["sketch"], r2["sketch"]); test_eq(r["last"], r2["last"])         # seeded: the same run twice
    test_fail(lambda: style_resnet(DGConfig(weights="/nonexistent.pth"), 7), contains="not found")


def test_dg_grid_resumes():
    from dg_literate.toyworld import ToyWorld
    tw = ToyWorld(56, seed=5)
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        job = [("lodo", "erm", ["photo", "cartoon"], ["sketch"], 0)]
        g1 = run_dg_grid(tw, job, DGConfig(epochs=1, batch_size=16, image_size=32), d, progress=False)
        t = (Path(d)/"lodo-erm-photo+cartoon-seed0.json").stat().st_mtime_ns
        g2 = run_dg_grid(tw, job, DGConfig(epochs=1, batch_size=16, image_size=32), d, progress=False)
        # read back, not re-run
        test_eq(g1, g2); test_eq((Path(d)/"lodo-erm-photo+cartoon-seed0.json").stat().st_mtime_ns, t)
        test_fail(
            lambda: run_dg_grid(tw, job, DGConfig(epochs=2, batch_size=16, image_size=32), d, progress=False),
            contains="another config",
        )


def test_style_transfer_pieces():
    enc = vgg_encoder(depth=3); dec = style_decoder(3)
    x = torch.randn(2, 3, 32, 32)
    fs = encode_all(enc, x)
    test_eq([f.shape[1:] for f in fs], [(64, 32, 32), (128, 16, 16), (256, 8, 8)])
    test_eq(dec(fs[-1]).shape, x.shape)
    a, b = torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5)
    test_close(style_loss("efdm", efdm(a, b), b), 0, eps=1e-10)  # EFD loss is zero at the EFDM output
    test_close(style_loss("adain", adain(a, b), b), 0, eps=1e-6)  # moment loss is zero at the AdaIN output
    assert style_loss("efdm", adain(a, b), b) > 0  # ... but AdaIN does not zero the EFD loss
    test_fail(lambda: vgg_encoder("/nonexistent.pth"), contains="not found")
    enc = resnet_encoder(""); dec = style_decoder(3, enc.channels, enc.first_down)  # a random ResNet: shapes only
    fs = encode_all(enc, x)
    test_eq([f.shape[1:] for f in fs], [(64, 16, 16), (64, 8, 8), (128, 4, 4)])
    test_eq(enc.channels, [64, 64, 128])
    test_eq(dec(fs[-1]).shape, x.shape); assert all(not p.requires_grad for p in enc.parameters())
    test_eq(resnet_encoder("", "resnet50").channels, [64, 256, 512])  # widths read off the stages
    enc4, dec4 = vgg_encoder(depth=4), vgg_decoder()  # the paper's pair (random weights)
    test_eq(sum(isinstance(m, nn.Conv2d) for m in dec4.modules()), 9)  # the official 9 convolutions
    # reflection padding, not zeros
    assert all(m.padding == (0, 0) for m in enc4.modules() if isinstance(m, nn.Conv2d))
    test_eq(sum(isinstance(m, nn.ReflectionPad2d) for m in enc4.modules()), 9)  # relu1_1 .. relu4_1: 9 convs
    f4 = encode_all(enc4, torch.randn(1, 3, 64, 64))[-1]
    test_eq(f4.shape[1:], (512, 8, 8))
    test_eq(dec4(f4).shape, (1, 3, 64, 64))
    c8, s8 = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8), torch.randint(
        0, 256, (2, 3, 32, 32), dtype=torch.uint8
    )
    enc, dec = vgg_encoder(depth=3), style_decoder(3)
    with torch.no_grad(): plain = _imdenorm(dec(encode_all(enc, _imnorm(c8))[-1]))
    test_eq(transfer(enc, dec, c8, s8, "efdm", alpha=0.0), plain)  # alpha 0: the content's own features
    assert not torch.equal(transfer(enc, dec, c8, s8, "efdm", alpha=1.0), plain)


def test_efdmix_gather_equals_efdmix():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4, 3, 7, 7, generator=g)
    lam = torch.rand(4, 1, 1, 1, generator=g)
    perm = torch.tensor([3, 2, 1, 0])
    test_close(efdmix_gather(x, lam, perm), efdmix(x, lam, perm), eps=1e-6)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True); w = torch.randn_like(x)
    (efdmix_gather(xa, lam, perm) * w).sum().backward(); (efdmix(xb, lam, perm) * w).sum().backward()
    test_close(xa.grad, xb.grad, eps=1e-6)
