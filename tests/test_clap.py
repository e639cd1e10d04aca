"""Tests exported from nbs/30_clap.ipynb by `dg-export-tests`. DO NOT EDIT: edit the notebook."""

from dg_literate.clap import *

from fastcore.test import *
import math, random, re, torch, torch.nn as nn, torch.nn.functional as F

def resmlp_literal(z, W1, b1, W2, alpha, out_dim):
    h = (z * torch.sigmoid(z)) @ W1.T + b1          # W1 SiLU(z) + b1
    if z.shape[1] == out_dim: sc = z
    else: sc = torch.stack([z[:, int(j * z.shape[1] / out_dim)] for j in range(out_dim)], 1)   # nearest
    return sc + alpha * (h @ W2.T)

def info_nce_literal(x, y, tau):
    B, total = len(x), 0.0
    cos = lambda a, b: torch.dot(a, b) / (a.norm() * b.norm())
    for a, b in ((x, y), (y, x)):
        for i in range(B):
            den = sum(torch.exp(cos(a[i], b[j]) / tau) for j in range(B)) + sum(
                torch.exp(cos(a[i], a[j]) / tau) for j in range(B) if j != i
            )
            total = total - torch.log(torch.exp(cos(a[i], b[i]) / tau) / den)
    return total / (2 * B)


def test_prompt_counts_per_class():
    from dg_literate.toyworld import CLASSES
    for vocab in (TOY_VOCAB, PAPER_VOCAB):
        ps = synthesize_prompts(list(CLASSES), vocab)
        test_eq(len(ps), 480 * len(CLASSES))
        test_eq([sum(p.label == y for p in ps) for y in range(len(CLASSES))], [480] * len(CLASSES))
        test_eq(len({render_prompt(p) for p in ps}), len(ps))                      # all distinct
    test_eq(
        render_prompt(Prompt(0, "dog", "realistic", "painting", "large", "red")),
        "a realistic painting of a large red dog",
    )
    test_eq(
        render_prompt(Prompt(0, "elephant", "realistic", "painting", "", "orange"), drop=("color", "art_style")),
        "a painting of an elephant",
    )
    test_eq(
        render_prompt(Prompt(0, "dog", "realistic", "painting", "large", "red"), swap=True),
        "a large red dog in a realistic painting style",
    )
    test_eq(render_prompt(Prompt(0, "dog", "realistic", "painting", "large", "red"), drop=STYLE_PARTS), "a dog")


def test_augmentations_keep_class_and_are_reproducible():
    from dg_literate.toyworld import CLASSES
    ps = synthesize_prompts(list(CLASSES) + ["sea turtle", "small"])  # a class name that is also a style word
    every = PromptAugConfig(p_size=0.5, p_color=0.5, p_image_type=0.5, p_art_style=0.5, p_swap=0.5)
    views = lambda seed, cfg: [
        augment_prompt(p, cfg, random.Random(seed * 100_003 + i)) for i, p in enumerate(ps)
    ]
    a, b = views(1, every), views(1, every)
    test_eq(a, b)                                                                 # same seed, same views
    assert a != views(2, every)                                                   # another seed, other views
    for p, t in zip(ps, a):
        assert re.search(rf"\b{re.escape(p.cls)}\b", t), (p, t)  # the class name is always there
        words = t.split()
        assert words.count(p.cls.split()[-1]) >= 1
    none = PromptAugConfig(p_size=0, p_color=0, p_image_type=0, p_art_style=0, p_swap=0, noise_len=0)
    test_eq(views(3, none), [render_prompt(p) for p in ps])  # probabilities 0: the prompt itself
    allp = PromptAugConfig(p_size=1, p_color=1, p_image_type=1, p_art_style=1, p_swap=1)
    test_eq(
        set(views(3, allp)),
        {f"{'an' if c[0] in 'aeiou' else 'a'} {c}" for c in list(CLASSES) + ["sea turtle", "small"]},
    )
    rates = [sum(p.color not in t for p, t in zip(ps, views(s, PromptAugConfig()))) / len(ps) for s in range(3)]
    assert all(0.45 < r < 0.55 for r in rates), rates                             # color deleted w.p. 0.5
    assert sum("style" in t for t in views(4, PromptAugConfig())) / len(ps) > 0.45   # swapped w.p. 0.5
    r = random.Random(0)
    for t in (with_noise_slots("a circle", PromptAugConfig(), r) for _ in range(30)):
        test_eq(t.split().count("*"), 4); assert "a circle" in t
    texts = ["a red circle", "a small star", "a heart"] * 4
    for _ in range(10):  # shared: one position per batch ...
        pos = {t.split().index("*") == 0 for t in noised_texts(texts, PromptAugConfig(), r)}
        test_eq(len(pos), 1)
    assert any(
        len(
            {
                tuple(w == "*" for w in t.split()[:1])
                for t in noised_texts(texts, PromptAugConfig(shared=False), r)
            }
        )
        > 1
        for _ in range(10)
    )  # ... per text: positions differ
    from dg_literate.clip import load_clip
    c = load_clip("toyclip-tiny")
    n = noise_tokens(c.model, PromptAugConfig(), 5, torch.Generator().manual_seed(0))
    test_eq(n.shape[:2], (5, 4)); test_eq((n - n[:1]).abs().max().item(), 0.0)    # one draw, shared by the batch
    n2 = noise_tokens(c.model, PromptAugConfig(shared=False), 5, torch.Generator().manual_seed(0))
    assert (n2[1:] - n2[:1]).abs().max() > 0                                      # per text: five draws
    test_close(n.std(), 0.02, eps=0.01)
    f = encode_noised(
        c.model, c.tokenizer, ["* * * * a circle"] * 3, PromptAugConfig(), torch.Generator().manual_seed(1)
    )
    test_close(f[0], f[2], eps=1e-5)  # identical texts, shared noise: identical features


def test_zero_init_network_is_identity():
    torch.set_grad_enabled(False)                                                 # restored at the end
    g = torch.Generator().manual_seed(0); z = torch.randn(5, 32, generator=g) * 3
    net = ResMLP(32, 64)
    test_eq(net(z), z)  # exactly the identity at initialization
    net.fc2.weight.normal_(); net.fc1.weight.normal_()
    assert not torch.allclose(net(z), z)                                          # trained: not the identity ...
    test_eq(with_alpha(net, 0.0)(z), z)                                           # ... but alpha = 0 is, exactly
    test_close(
        with_alpha(net, 0.3)(z),
        resmlp_literal(z, net.fc1.weight, net.fc1.bias, net.fc2.weight, 0.3, 32),
        eps=1e-4,
    )
    test_close(with_alpha(net, 0.3)(z) - z, 0.3 * (net(z) - z), eps=1e-4)  # alpha scales the branch linearly
    down = ResMLP(32, 16, out_dim=8)
    test_eq(down(z), z[:, ::4])  # nearest downsampling on the shortcut
    down.fc2.weight.normal_()
    test_close(down(z), resmlp_literal(z, down.fc1.weight, down.fc1.bias, down.fc2.weight, 1.0, 8), eps=1e-4)
    torch.set_grad_enabled(True)


def test_info_nce_is_cross_entropy_and_symmetric():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 16, generator=g), torch.randn(6, 16, generator=g)
    for tau in (0.5, 1.0, 0.07):
        test_close(info_nce(x, y, tau), info_nce_literal(x, y, tau), eps=1e-4)
        test_close(info_nce(x, y, tau), info_nce(y, x, tau), eps=1e-5)             # symmetric in the two views
    test_close(info_nce(3 * x, 0.1 * y), info_nce(x, y), eps=1e-5)                 # cosine: norms do not matter
    e = torch.eye(5)
    for tau in (0.5, 1.0):
        test_close(info_nce(e, e, tau), -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2 * 5 - 2)), eps=1e-6)
    assert info_nce(x, x + 0.05 * y) < info_nce(x, y)                              # aligned positives: lower
    test_close(info_nce(e[:1], e[:1]), 0.0, eps=1e-6)                             # one pair, no negatives: 0
    l1, l2 = clap_loss(x, y, x + y, tau=0.5, tau_c=1.0, lam=2.0)
    test_close(l1, info_nce(x, y, 0.5), eps=1e-6); test_close(l2, 2 * info_nce(y, x + y, 1.0), eps=1e-6)


def test_clap_training_on_cached_features():
    import dataclasses
    from dg_literate.clip import load_clip
    from dg_literate.toyworld import CLASSES
    c = load_clip("toyclip-tiny", device="cpu"); names = list(CLASSES)
    ps = [p for p in synthesize_prompts(names) if p.art_style == "simple" and p.size == "small"]  # 7 x 80 prompts
    fv = prompt_views(c.model, c.tokenizer, ps, names, n_views=3, progress=False)
    d = fv.z.shape[1]
    test_eq(fv.views.shape, (len(ps), 3, d)); test_eq(fv.z_class.shape, (7, d))
    assert not torch.allclose(fv.views[:, 0], fv.views[:, 1])                    # views differ
    fv2 = prompt_views(c.model, c.tokenizer, ps, names, n_views=3, progress=False)
    test_close(fv.views, fv2.views, eps=1e-5)                                    # reproducible under the seed
    cb, lb = cached_batches(fv, 7), live_batches(c.model, c.tokenizer, ps, names, PromptAugConfig(), 7)
    z1, za1, zc1 = cb(torch.Generator().manual_seed(5)); z2, za2, zc2 = lb(torch.Generator().manual_seed(5))
    test_close(z1, z2, eps=1e-4); test_close(zc1, zc2, eps=1e-4)  # same prompts and classes, fresh views
    from dg_literate.clap import _by_class
    g = torch.Generator().manual_seed(5)
    i = sample_batch(_by_class(fv.labels), 7, g)
    v = torch.randint(3, (7,), generator=g)
    # one view for the batch
    test_eq(cached_batches(fv, 7, shared_view=True)(torch.Generator().manual_seed(5))[1], fv.views[i, v[0]])
    # 7 distinct classes
    test_eq(sorted(torch.nonzero((zc1[:, None] == fv.z_class[None]).all(-1))[:, 1].tolist()), list(range(7)))
    cfg = CLAPConfig(steps=300, batch_size=7, lr=1e-3, check_every=0)
    net, log = train_clap(cb, d, cfg, progress=False)
    assert not torch.allclose(net(fv.z[:5]), fv.z[:5])
    first, last = sum(log["loss"][:30]) / 30, sum(log["loss"][-30:]) / 30
    assert last < first - 0.05, (first, last)
    # no window can improve by 10
    es = dataclasses.replace(cfg, steps=10_000, check_every=20, patience=2, delta=10.0)
    _, log = train_clap(cb, d, es, progress=False)
    test_eq(log["stopped_at"], 60); test_eq(log["best_step"], 20)  # the first window, then 2 bad ones


def test_clap_job_equals_training():
    import tempfile
    from dataclasses import asdict
    from dg_literate.clip import load_clip
    from dg_literate.launch import Job, run_jobs
    from dg_literate.toyworld import CLASSES
    c = load_clip("toyclip-tiny", device="cpu"); names = list(CLASSES)
    fv = prompt_views(c.model, c.tokenizer, synthesize_prompts(names)[::8], names, n_views=2, progress=False)
    cfg = CLAPConfig(steps=50, batch_size=7, lr=1e-3, check_every=10, patience=2, seed=3)
    job = dict(views="CLAP", shared_view=True, cfg=asdict(cfg))
    with tempfile.TemporaryDirectory() as t:
        r, = run_jobs([Job("clap", clap_job, job)], {"CLAP": fv}, t, progress=False)
        # read back from its files
        back, = run_jobs([Job("clap", clap_job, job)], {"CLAP": fv}, t, progress=False)
    net, log = train_clap(cached_batches(fv, 7, True), fv.z.shape[1], cfg, progress=False)
    with torch.no_grad():
        test_close(clap_net(back)(fv.z), net(fv.z), eps=1e-6); test_eq(back["log"]["loss"], log["loss"])
        test_ne(clap_net(r)(fv.z), fv.z)  # trained: no longer the identity


def test_imaug_image_sources():
    import tempfile
    from pathlib import Path
    from PIL import Image
    from dg_literate.toyldm import load_ldm, tiny_sd_folder
    with tempfile.TemporaryDirectory() as tmp:
        for c, n in (("big_dog", 2), ("cat", 1)):
            (Path(tmp)/"imgs"/c).mkdir(parents=True)
            for i in range(n): Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(Path(tmp)/"imgs"/c/f"{i}.png")
        ims, ys = folder_prompt_images(Path(tmp)/"imgs", ["big dog", "cat"])
        test_eq(ys.tolist(), [0, 0, 1]); test_eq(ims[1].getpixel((0, 0)), (40, 0, 0))
        test_fail(
            lambda: folder_prompt_images(Path(tmp) / "imgs", ["cat", "horse"]), contains="no images of ['horse']"
        )
        test_fail(lambda: folder_prompt_images(Path(tmp)/"none", ["cat"]), contains="ldm:NAME")
        sd = load_ldm(str(tiny_sd_folder(Path(tmp)/"sd")))  # the real Stable Diffusion loading path
        ps = synthesize_prompts(["dog", "cat"], PAPER_VOCAB)[::200]
        x = generate_prompt_images(sd, ps, steps=2, batch=2, progress=False)
        test_eq((x.shape, x.dtype), ((len(ps), 3, sd.resolution, sd.resolution), torch.uint8))


def test_clap_wrapper_applies_net_after_both_encoders():
    from dg_literate.clip import load_clip, encode_text, zero_shot_classifier
    from dg_literate.toyworld import CLASSES, ToyWorld
    c = load_clip("toyclip-tiny", device="cpu"); names = list(CLASSES)
    x = torch.stack([c.preprocess(ToyWorld(7, seed=2).image("photo", i)) for i in range(7)])
    net = ResMLP(c.model.text_projection.shape[1], 32)
    with torch.no_grad(): net.fc2.weight.normal_(std=0.1)
    m = CLAP(c.model, net, alpha=0.5)
    with torch.no_grad():
        test_close(
            m.encode_image(x), F.normalize(with_alpha(net, 0.5)(c.model.encode_image(x)), dim=-1), eps=1e-5
        )
        t = c.tokenizer(names)
        test_close(m.encode_text(t), F.normalize(with_alpha(net, 0.5)(encode_text(c.model, t)), dim=-1), eps=1e-5)
        test_eq(net.alpha, 1.0)  # the trained net is not modified
        W0 = CLAP(c.model, net, alpha=0.0).zero_shot_weights(c.tokenizer, names, ["a photo of a {}"])
        # alpha 0: CLIP
        test_close(W0, zero_shot_classifier(c.model, c.tokenizer, names, ["a photo of a {}"]), eps=1e-5)
        test_eq(m(x, m.zero_shot_weights(c.tokenizer, names)).shape, (7, 7))


def test_linear_probe_keeps_the_best_loss_checkpoint():
    g = torch.Generator().manual_seed(0)
    f = F.normalize(torch.randn(40, 8, generator=g), dim=-1); yy = torch.arange(40) % 4
    # separable: the probe fits (one batch)
    head = linear_probe(f + F.one_hot(yy, 8).float(), yy, 4, batch_size=40)
    test_eq((head(f + F.one_hot(yy, 8).float()).argmax(1) == yy).all().item(), True)
    # nothing improves after the first epoch:
    log = []; _ = linear_probe(f, yy, 4, lr=0.0, batch_size=40, log=log)
    test_eq(len(log), 11)                                                        # 1 + patience epochs
    # a large step: the epoch loss oscillates
    log = []; noisy = linear_probe(f, yy, 4, lr=3.0, batch_size=8, log=log)
    best, k = math.inf, 0
    for i, v in enumerate(log):                                                  # the official rule, literally
        if v < best - 1e-3: best, k = v, i
    assert k + 1 < len(log), (k, len(log))  # the best epoch is not the last one ...
    ref = linear_probe(f, yy, 4, lr=3.0, batch_size=8, epochs=k + 1)  # ... and its weights are what is returned
    test_close(noisy.weight, ref.weight, eps=1e-6); test_close(noisy.bias, ref.bias, eps=1e-6)


def test_attacks_stay_in_the_ball_and_hurt():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 4, 4, generator=g); W = torch.randn(3 * 4 * 4, 5, generator=g)
    logits_fn = lambda p: (p.flatten(1) - 0.5) @ W
    y = logits_fn(x).argmax(1)  # the clean model is right on every image
    for kind in ("FGSM", "PGD-20", "CW-20"):
        xa = attack(logits_fn, x, y, kind, eps=0.05, generator=g)
        assert (xa - x).abs().max() <= 0.05 + 1e-6 and xa.min() >= 0 and xa.max() <= 1
        assert (logits_fn(xa).argmax(1) == y).float().mean() < 0.9, kind            # the attack flips predictions
    xr = x.clone().requires_grad_(True)
    (gr,) = torch.autograd.grad(F.cross_entropy(logits_fn(xr), y, reduction="sum"), xr)
    # FGSM literally
    test_close(attack(logits_fn, x, y, "FGSM", eps=0.05), (x + 0.05 * gr.sign()).clamp(0, 1), eps=1e-6)
    test_fail(lambda: attack(logits_fn, x, y, "BIM"), contains="unknown attack")
    mean, std = (0.48, 0.46, 0.41), (0.27, 0.26, 0.28)                           # CLIP's normalization
    m_, s_ = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    u = (x - m_) / s_                                                              # the official attack's input
    for kind in ("FGSM", "PGD-20"):
        xa = attack(logits_fn, x, y, kind, eps=0.031, generator=g, space="normalized", mean=mean, std=std)
        ua = (xa - m_) / s_
        assert ua.min() >= -1e-6 and ua.max() <= 1 + 1e-6  # the official clamp, in normalized space
        inside = (u >= 0) & (u <= 1)  # where the clamp does not act ...
        assert ((ua - u).abs()[inside] <= 0.031 + 1e-5).all()  # ... the ball has radius eps there,
        assert ((xa - x).abs()[inside] <= (0.031 * s_).expand_as(x)[inside] + 1e-6).all()  # eps * sigma in pixels
        # the clamp moves negative values by more
        assert (ua[u < 0] >= 0).all() and ((xa - x).abs().amax() > 0.031)
    test_fail(lambda: attack(logits_fn, x, y, space="normalized"), contains="needs the model's normalization")
    test_fail(lambda: attack(logits_fn, x, y, space="lab"), contains="'pixel' or 'normalized'")
    z = torch.tensor([[3.0, 1.0, 2.5]])
    test_close(cw_loss(z, torch.tensor([0])), torch.tensor([-50.5]), eps=1e-6)


def test_zero_shot_protocol_literal():
    from dg_literate.clip import load_clip
    from dg_literate.clap import _encode
    c = load_clip("toyclip-tiny", device="cpu"); names = ["circle", "star", "heart"]
    pf = prompt_features(c.model, c.tokenizer, names, nc_draws=2)
    test_eq(set(pf), {"C", "PC", "CP", "NC"}); test_eq(len(pf["NC"]), 2)
    nc = PromptAugConfig(noise_positions=("front",))
    test_close(
        pf["NC"][1],
        encode_noised(
            c.model, c.tokenizer, [f"* * * * {n}" for n in names], nc, torch.Generator().manual_seed(1)
        ),
    )
    test_close(pf["PC"], _encode(c.model, c.tokenizer, [f"a photo of a {n}" for n in names]))
    g = torch.Generator().manual_seed(0); d = pf["C"].shape[1]
    imgs = {
        "a": (torch.randn(20, d, generator=g), torch.arange(20) % 3),
        "b": (torch.randn(9, d, generator=g), torch.arange(9) % 3),
    }
    net = nn.Linear(d, d); t = zero_shot_table(net, imgs, pf)
    for k in ("C", "NC"):                                                          # the literal per-image loop
        for dom, (f, y) in imgs.items():
            Ws = pf[k] if k == "NC" else [pf[k]]
            hits = [
                sum(
                    int(
                        max(range(3), key=lambda j: F.cosine_similarity(net(f[i]), net(W[j]), dim=0).item())
                        == y[i]
                    )
                    for i in range(len(y))
                )
                / len(y)
                * 100
                for W in Ws
            ]
            test_close(t[k][dom], sum(hits) / len(hits), eps=1e-4)
    r = prompt_robustness({"C": 80.0, "PC": 90.0, "CP": 85.0, "NC": 70.0})
    test_eq((r["ZS(PC)"], r["R"], r["drop_NC"]), (90.0, 10.0, 10.0))
    test_close(r["std"], (50 / 3) ** 0.5, eps=1e-9)


def test_alpha_search_finds_a_planted_maximum():
    import math
    peak = lambda a0: (lambda a: -(math.log10(a) - math.log10(a0)) ** 2)  # unimodal in log alpha, maximum at a0
    # on the grid: found exactly
    a, seen = search_alpha(peak(10.0)); test_eq(a, 10.0); test_eq(len(seen), len(ALPHA_GRID))
    a, _ = search_alpha(peak(0.2)); test_eq(a, 10 ** -0.5)  # off the grid: the nearest grid point in log
    # refined: close to it
    a, _ = search_alpha(peak(0.2), refine=12); assert abs(math.log10(a) - math.log10(0.2)) < 0.05, a
    a, _ = search_alpha(peak(500.0)); test_eq(a, 100.0)                            # beyond the grid: its end
    a, _ = search_alpha(lambda a: -abs(a - 0.5), grid=(0.0, 0.25, 0.5, 1.0)); test_eq(a, 0.5)


def test_dataset_settings_rows():
    import yaml, dg_literate
    from pathlib import Path
    cfg, aug, a = dataset_setting(CLAPConfig(), PromptAugConfig(), OFFICIAL_SETTINGS["OfficeHome"])
    test_eq(
        (cfg.batch_size, cfg.latent_dim, cfg.lam, cfg.tau, cfg.tau_c, aug.noise_len, a),
        (96, 448, 1e-4, 0.3, 1.0, 0, 0.14),
    )
    test_eq(dataset_setting(CLAPConfig(), PromptAugConfig(), None), (CLAPConfig(), PromptAugConfig(), None))
    test_fail(lambda: dataset_setting(CLAPConfig(), PromptAugConfig(), {"batch": 8}), contains="may set")
    f = Path(dg_literate.__file__).parent.parent/"nbs"/"params"/"clap_vitb16.yaml"
    # the file carries the official rows
    if f.exists(): test_eq(yaml.safe_load(f.read_text())["dataset_settings"], OFFICIAL_SETTINGS)
