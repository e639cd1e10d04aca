"""Tests exported from nbs/40_promptsync.ipynb by `dg-export-tests`. DO NOT EDIT: edit the notebook."""

from dg_literate.promptsync import *

from fastcore.test import *
import math, torch, torch.nn as nn, torch.nn.functional as F

def avg_entropy_literal(logits):
    probs = [torch.softmax(l, 0) for l in logits]
    p_bar = sum(probs) / len(probs)
    return -sum(p * math.log(p) for p in p_bar.tolist())

def alignment_literal(p_x, protos, p_bar):
    total = 0.0
    for m in range(len(p_x)):
        for c in range(len(p_bar)):
            d, p = protos[m][c], (p_x[m] if p_x[m].dim() == 1 else p_x[m][c])
            amp = math.log(1 + sum((a - b) ** 2 for a, b in zip(p.tolist(), d.tolist())) / len(d))
            ang = 1 - torch.dot(p, d).item() / (p.norm() * d.norm()).item()
            total += p_bar[c].item() * (amp + ang)
    return total / len(p_x)

def discrimination_literal(z, y, h, tau):
    s = lambda a, b: (torch.dot(a, b) / (a.norm() * b.norm())).item() / tau
    losses = []
    for k in sorted(set(y.tolist())):
        pos = sum(math.exp(s(z[i], h[k])) for i in range(len(z)) if y[i] == k)
        neg = sum(math.exp(s(h[k], h[j])) for j in range(len(h)) if j != k)
        neg += sum(
            math.exp(s(z[i], h[j])) for i in range(len(z)) if y[i] == k for j in range(len(h)) if j != k
        )
        neg += sum(math.exp(s(h[k], z[i])) for i in range(len(z)) if y[i] != k)
        losses.append(-math.log(pos / (pos + neg)))
    return sum(losses) / len(losses)

def promptalign_literal(xs, mu_hat, var_hat, weight):
    total = 0.0
    for x, mh, vh in zip(xs, mu_hat, var_hat):
        n, T, D = x.shape
        mu = [[sum(x[i, t, d].item() for i in range(n)) / n for d in range(D)] for t in range(T)]
        var = [
            [sum((x[i, t, d].item() - mu[t][d]) ** 2 for i in range(n)) / n for d in range(D)]
            for t in range(T)
        ]
        total += 0.5 * sum(abs(mu[t][d] - mh[t, d].item()) for t in range(T) for d in range(D)) / (T * D)
        total += 0.5 * sum(abs(var[t][d] - vh[t, d].item()) for t in range(T) for d in range(D)) / (T * D)
    return weight * total


def test_prompted_towers_reproduce_open_clip():
    from dg_literate.clip import load_clip, encode_text
    from dg_literate.toyworld import CLASSES, ToyWorld
    c = load_clip("toyclip-tiny", device="cpu")
    x = torch.stack([c.preprocess(ToyWorld(7, seed=3).image("sketch", i)) for i in range(7)])
    t = c.tokenizer([f"a photo of a {n}." for n in CLASSES])
    with torch.no_grad():
        fi, rec = vision_forward(c.model.visual, x, None, record=1)
        test_close(fi, c.model.encode_image(x), eps=1e-5)
        test_eq(len(rec), 1)
        test_eq(rec[0].shape, (7, 65, 64))
        _, rin = vision_forward(c.model.visual, x, None, record=1, at="input")
        vis = c.model.visual; e = vis.conv1(x).flatten(2).transpose(1, 2)
        e = torch.cat([vis.class_embedding.expand(7, 1, -1), e], 1) + vis.positional_embedding
        test_close(rin[0], vis.ln_pre(e), eps=1e-6)  # the input of block 0 is ln_pre's output
        assert not torch.allclose(rin[0], rec[0])
        vt = vision_tokens(rec)
        test_eq(vt["tokens"][0], rec[0][:, 1:].mean(1))
        test_eq(vt["cls"][0], rec[0][:, 0])
        ft, rt = text_forward(c.model, t, record=1)
        test_close(ft, encode_text(c.model, t), eps=1e-5); test_eq(rt[0].shape, (7, 64))
        # context = the words' own embeddings
        mp = MultimodalPrompts(c.model, c.tokenizer, n_ctx=4, depth=1, vision=False)
        fi2, ft2, _ = mp.encode(c.model, x, mp.class_tokens(list(CLASSES)))
        # a CoOp prompt at its initialization is CLIP
        test_close(ft2, F.normalize(encode_text(c.model, t), dim=-1), eps=1e-5)
        test_close(fi2, F.normalize(c.model.encode_image(x), dim=-1), eps=1e-5)
        mm = MultimodalPrompts(c.model, c.tokenizer, n_ctx=2, depth=3)
        fi3, ft3, r3 = mm.encode(c.model, x, mm.class_tokens(list(CLASSES)), record=3)
        assert not torch.allclose(fi3, fi2, atol=1e-4)  # vision prompts change the image features
        test_eq(len(r3["vision"]), 1); test_eq(len(r3["text"]), 1)  # toyclip-tiny has one layer per tower
        test_eq(r3["vision"][0].shape, (7, 65 + 2, 64))  # CLS, 64 patches, 2 prompt tokens
        test_eq([len(v) for v in mm.vision_prompts()], [2, 2, 2])
    test_fail(lambda: vision_forward(c.model.visual, x, at="middle"), contains="'output' or 'input'")


def test_maple_coupling_starts_as_the_official_code():
    from dg_literate.clip import load_clip
    c = load_clip("toyclip-tiny", device="cpu")
    P = MultimodalPrompts(c.model, c.tokenizer, depth=4, seed=3)
    Dt = P.ctx.shape[1]; F0, *Fd = [f.requires_grad_(False) for f in P.couple]; bound = 1 / math.sqrt(Dt)
    test_eq(len(Fd), 3)
    for f in Fd[1:]: test_eq(f.weight, Fd[0].weight); test_eq(f.bias, Fd[0].bias)     # identical copies ...
    assert f.weight is not Fd[0].weight                                                  # ... not one shared layer
    assert not torch.equal(F0.weight, Fd[0].weight)
    for f in (F0, Fd[0]):
        assert f.weight.abs().max() <= bound and f.bias.abs().max() <= bound and f.bias.abs().min() > 0
        test_close(f.weight.std().item(), bound / math.sqrt(3), eps=0.1 * bound)
    test_eq(MultimodalPrompts(c.model, c.tokenizer, depth=4, seed=3).couple[1].weight.detach(), Fd[0].weight)  # seeded


def test_confidence_selection_entropy_and_views():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 7, generator=g) * 3
    for top, n in ((0.1, 6), (0.25, 16), (1.0, 64), (0.001, 1)):
        idx = select_confident(logits, top); test_eq(len(idx), n)  # exactly floor(top*N), at least 1
        ent = -(logits.softmax(1) * logits.log_softmax(1)).sum(1)
        assert ent[idx].max() <= ent[[i for i in range(64) if i not in idx.tolist()]].min() if n < 64 else True
    test_close(avg_entropy(logits[:6]), avg_entropy_literal(logits[:6]), eps=1e-5)
    test_close(avg_entropy(torch.zeros(3, 7)), math.log(7), eps=1e-5)              # uniform: log C
    assert avg_entropy(torch.tensor([[20.0, 0, 0], [20.0, 0, 0]])) < 1e-6            # confident and agreeing: ~0
    from PIL import Image
    import torchvision.transforms as T
    pre = T.Compose([T.Resize(32), T.CenterCrop(32), T.ToTensor()])
    im = Image.fromarray((torch.rand(48, 64, 3) * 255).byte().numpy())             # a raw, non-square image
    v = make_views(im, pre, 8, seed=1)
    test_eq(v.shape, (8, 3, 32, 32)); test_eq(v[0], pre(im))  # the original first, preprocessed
    assert not torch.allclose(v[1], v[0]); test_eq(make_views(im, pre, 8, seed=1), v)   # seeded: the same views
    assert not torch.allclose(make_views(im, pre, 8, seed=2)[1], v[1])
    flat = Image.new("RGB", (40, 40), (128, 64, 32))
    test_close(make_views(flat, pre, 4)[3], pre(flat), eps=1e-6)  # crops of a flat image stay flat
    va = make_views(im, pre, 4, use_augmix=True, seed=1)
    test_eq(va.shape, (4, 3, 32, 32))
    assert not torch.allclose(va[1], v[1])


def test_class_prompts_from_wordnet():
    class _Lemma:
        def __init__(self, n, ants=()): self.n, self.ants = n, ants
        def name(self): return self.n
        def antonyms(self): return [_Lemma(a) for a in self.ants]
    class _Synset:
        def __init__(self, lemmas, parts=()): self.l, self.p = lemmas, parts
        def lemmas(self): return self.l
        def part_meronyms(self): return [_Synset([_Lemma(p)]) for p in self.p]
        member_meronyms = substance_meronyms = lambda self: []
    class _WN:
        def synsets(self, w, pos): return {"dog": [_Synset([_Lemma("dog"), _Lemma("domestic_dog")], ["tail"])],
                                           "up": [_Synset([_Lemma("up", ["down"])])]}.get(w, [])
    test_eq(class_prompts(["dog", "moon"]), [["a photo of a dog."], ["a photo of a moon."]])  # no WordNet: plain
    test_eq(
        class_prompts(["dog", "moon", "up"], wn=_WN()),
        [
            ["a photo of a dog.", "a photo of a domestic dog.", "a photo of a dog with a tail."],
            ["a photo of a moon."],
            ["a photo of a up.", "a photo of a up, not a down."],
        ],
    )
    test_eq(len(class_prompts(["dog"], wn=_WN(), max_per_class=2)[0]), 2)
    wn = wordnet()
    if wn is not None:  # the real database, where installed
        dog = class_prompts(["dog"], wn=wn)[0]
        assert "a photo of a domestic dog." in dog and any(" with a " in p for p in dog), dog


def test_prototype_alignment_loss():
    g = torch.Generator().manual_seed(0)
    protos = [torch.randn(5, 16, generator=g) for _ in range(3)]
    p_x = [torch.randn(16, generator=g) for _ in range(3)]
    p_bar = torch.softmax(torch.randn(5, generator=g), 0)
    test_close(prototype_alignment_loss(p_x, protos, p_bar)[0], alignment_literal(p_x, protos, p_bar), eps=1e-4)
    per_class = [torch.randn(5, 16, generator=g) for _ in range(3)]  # the text branch's (C,D) states
    test_close(
        prototype_alignment_loss(per_class, protos, p_bar)[0],
        alignment_literal(per_class, protos, p_bar),
        eps=1e-4,
    )
    test_close(prototype_alignment_loss(protos, protos, p_bar)[0], 0.0, eps=1e-5)  # every class at its prototype
    own = [v[2] for v in protos]; onehot = F.one_hot(torch.tensor(2), 5).float()
    loss, amp, ang = prototype_alignment_loss(own, protos, onehot)
    test_close(loss, 0.0, eps=1e-5)
    test_close(amp[:, 2], torch.zeros(3), eps=1e-6)
    test_close(ang[:, 2], torch.zeros(3), eps=1e-5)
    near = [v[2] + 0.1 * torch.randn(16, generator=g) for v in protos]
    far = [v[2] + 1.0 * (n - v[2]) * 10 for v, n in zip(protos, near)]
    # grows with distance
    assert prototype_alignment_loss(near, protos, onehot)[0] < prototype_alignment_loss(far, protos, onehot)[0]
    rot = [torch.cat([v[2][8:], v[2][:8]]) for v in protos]                          # same norm, another angle
    assert prototype_alignment_loss(rot, protos, onehot)[2][:, 2].min() > 0.05
    px = [p.clone().requires_grad_() for p in own]
    prototype_alignment_loss(px, protos, F.one_hot(torch.tensor(0), 5).float())[0].backward()
    with torch.no_grad():  # a step pulls toward the likely class's prototype
        stepped = [p - 0.5 * p.grad for p in px]
        assert sum(F.mse_loss(s, v[0]) for s, v in zip(stepped, protos)) < sum(
            F.mse_loss(p, v[0]) for p, v in zip(own, protos)
        )


def test_prototype_discrimination_loss():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(5, 16, generator=g)
    z = torch.randn(9, 16, generator=g)
    y = torch.tensor([0, 0, 1, 3, 3, 3, 4, 1, 0])
    for tau in (0.1, 0.5, 1.0):
        test_close(prototype_discrimination_loss(z, y, h, tau), discrimination_literal(z, y, h, tau), eps=1e-4)
    toward = h[y] + 0.3 * z  # views moved toward their own prototype
    assert prototype_discrimination_loss(toward, y, h) < prototype_discrimination_loss(z, y, h)
    # views at their prototypes
    assert prototype_discrimination_loss(h[y], y, h, 0.5) < prototype_discrimination_loss(z, y, h, 0.5)
    other = h[(y + 1) % 5]  # views at another class's prototype: worse
    assert prototype_discrimination_loss(other, y, h) > prototype_discrimination_loss(z, y, h)
    hs = h.clone(); hs[1] = h[0] * 0.9 + 0.1 * h[1]  # prototypes that collide discriminate worse
    assert prototype_discrimination_loss(h[y], y, hs) > prototype_discrimination_loss(h[y], y, h)
    zz = z.clone().requires_grad_()
    prototype_discrimination_loss(zz, y, h).backward()
    assert zz.grad.abs().sum() > 0


def test_promptalign_loss():
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(3, 4, 5, generator=g) for _ in range(2)]
    mh, vh = [torch.randn(4, 5, generator=g) for _ in range(2)], [torch.rand(4, 5, generator=g) for _ in range(2)]
    test_close(promptalign_loss(xs, mh, vh), promptalign_literal(xs, mh, vh, 100 / 3), eps=1e-3)
    test_close(
        promptalign_loss(xs, [x.mean(0) for x in xs], [x.var(0, unbiased=False) for x in xs]), 0.0, eps=1e-5
    )  # at the source's
    from dg_literate.clip import load_clip
    from dg_literate.toyworld import ToyWorld
    c = load_clip("toyclip-tiny", device="cpu")
    mp = MultimodalPrompts(c.model, c.tokenizer, n_ctx=2, depth=1)
    X = torch.stack([c.preprocess(ToyWorld(5, seed=2).image("photo", i)) for i in range(5)])
    mu, var = source_token_stats(c.model, mp, X, layers=(0,), batch_size=2)           # two batches, two passes
    _, rin = vision_forward(c.model.visual, X, mp.vision_prompts(), 1, at="input")
    test_close(mu[0], rin[0].mean(0), eps=1e-5); test_close(var[0], rin[0].var(0, unbiased=False), eps=1e-5)
    test_eq(mu[0].shape, (1 + 64 + 2, 64))  # every token: CLS, patches, prompts
    test_fail(lambda: source_token_stats(c.model, mp, X, layers=(0, 1)), contains="has 1 blocks")


def test_adaptation_touches_only_prompts_resets_and_caches():
    from dg_literate.clip import load_clip
    from dg_literate.toyworld import CLASSES, ToyWorld
    c = load_clip("toyclip-tiny", device="cpu"); model = freeze(c.model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mp = MultimodalPrompts(model, c.tokenizer, n_ctx=2, depth=3)
    ct = mp.class_tokens(list(CLASSES))
    w = ToyWorld(14, seed=4); imgs = [w.image("photo", i) for i in range(14)]
    src = proxy_source(
        imgs, w.labels("photo"), c.preprocess, c.tokenizer, class_prompts(list(CLASSES)), n_views=2
    )
    test_eq(src.views.shape, (28, 3, 64, 64)); test_eq(src.labels[:4], w.labels("photo")[:2].repeat_interleave(2))
    protos = class_prototypes(model, mp, src, 7)
    test_eq(len(protos.vision), 1)
    test_eq(protos.vision[0].shape, (7, 64))
    test_eq(protos.cls[0].shape, (7, 64))
    test_eq(protos.text[0].shape, (7, 64))
    views = [make_views(w.image("sketch", i), c.preprocess, 8, seed=i) for i in range(4)]
    p0 = {k: v.clone() for k, v in mp.state_dict().items()}
    cfg = TTAConfig(n_views=8, lr=0.5, inner_lr=0.5, source_batch=8)
    seen = []
    orig_step = torch.optim.AdamW.step
    def spy(self, *a, **k):
        seen.append([p.detach().clone() for g in self.param_groups for p in g["params"]])
        return orig_step(self, *a, **k)
    torch.optim.AdamW.step = spy
    try:
        out_t = tpt_adapt(model, mp, ct, views[0], cfg); n_tpt = len(seen)
        out_t2 = tpt_adapt(model, mp, ct, views[0], TTAConfig(steps=2)); n_tpt2 = len(seen) - n_tpt
        out_s, log = promptsync_adapt(model, mp, ct, views[1], protos, src, 1, cfg)
        n_ps = len(seen) - n_tpt - n_tpt2
        out_s2, _ = promptsync_adapt(model, mp, ct, views[1], protos, src, 1, TTAConfig(steps=3, source_batch=8))
        n_ps3 = len(seen) - n_tpt - n_tpt2 - n_ps
    finally:
        torch.optim.AdamW.step = orig_step
    test_eq((n_tpt, n_tpt2, n_ps, n_ps3), (1, 2, 1, 1))  # TPT steps each time; PromptSync accumulates
    test_eq(out_t.shape, (7,))
    test_eq(out_s.shape, (7,))
    assert log["disc"] > 0 and log["align"] > 0 and log["ent"] > 0
    for k, v in mp.state_dict().items(): test_eq(v, p0[k])                       # prompts reset after each sample
    for k, v in model.state_dict().items(): test_eq(v, before[k])                 # the model is untouched
    assert all(p.grad is None for p in model.parameters())                        # and got no gradient
    with torch.no_grad(): zs = mp.logits(model, views[1][:1], ct)[0]
    assert not torch.allclose(out_s, zs, atol=1e-5)  # the adapted prompt predicted differently
    g_fresh, l_fresh = meta_train_grad(model, mp, src, protos, 5, cfg)
    cache = {}
    g_c, _ = meta_train_grad(model, mp, src, protos, 5, cfg, cache)
    g_r, l_r = meta_train_grad(model, mp, src, protos, 5, cfg, cache)
    # cached = fresh at the same prompts
    for a_, b_, r_ in zip(g_fresh, g_c, g_r): test_close(a_, b_, eps=1e-7); assert r_ is b_
    assert math.isnan(l_r) and l_fresh > 0
    assert not all(
        torch.allclose(a_, b_) for a_, b_ in zip(g_fresh, meta_train_grad(model, mp, src, protos, 6, cfg)[0])
    )  # another batch
    xb, yb = draw_source_batch(src, 5, 8)  # L_D on source batch 5, literally
    with torch.no_grad():
        zv = vision_tokens(vision_forward(model.visual, xb, mp.vision_prompts(), record=1)[1])
        q = torch.isin(src.text_labels, yb)
        ut = text_forward(model, src.text_tokens[q], mp.ctx, list(mp.deep), record=1)[1]
        lit = (
            discrimination_literal(zv["tokens"][0], yb, protos.vision[0], 0.1)
            + discrimination_literal(zv["cls"][0], yb, protos.cls[0], 0.1)
            + discrimination_literal(ut[0], src.text_labels[q], protos.text[0], 0.1)
        ) / 3
        test_close(source_discrimination_loss(model, mp, src, protos, 5, 8), lit, eps=1e-4)
        test_close(l_fresh, lit, eps=1e-4)
    cache, logs = {}, []
    for i in range(4):
        logs.append(
            promptsync_adapt(
                model,
                mp,
                ct,
                views[i],
                protos,
                src,
                i,
                TTAConfig(n_views=8, reuse_every=2, source_batch=8),
                cache,
            )[1]["reused"]
        )
    # PromptSync*: g_D recomputed every 2 samples
    test_eq(logs, [False, True, False, True]); test_eq(list(cache), [2])
    logits_all = mp.logits(model, views[2], ct)
    g_full = torch.autograd.grad(
        avg_entropy(logits_all[select_confident(logits_all, 0.25)]), [mp.ctx, mp.couple[0].weight]
    )
    idx = confident(model, mp, views[2], ct, 0.25)
    g_conf = torch.autograd.grad(avg_entropy(mp.logits(model, views[2][idx], ct)), [mp.ctx, mp.couple[0].weight])
    # same gradient through the confident views only
    for a_, b_ in zip(g_full, g_conf): test_close(a_, b_, eps=1e-5)
    stats = source_token_stats(model, mp, src.views, layers=(0,))
    out_pa = promptalign_adapt(model, mp, ct, views[3], stats, TTAConfig(lr=4e-2, pa_layers=(0,)))
    for k, v in mp.state_dict().items(): test_eq(v, p0[k])
    with torch.no_grad(): assert not torch.allclose(out_pa, mp.logits(model, views[3][:1], ct)[0], atol=1e-5)


def test_maple_schedule_and_training():
    # MaPLe's config: warm-up, then 0.0026
    test_eq([round(maple_lr_at(MaPLeConfig(), e), 6) for e in range(2)], [1e-5, 0.0026])
    cfg5 = MaPLeConfig(epochs=5, warmup_epochs=1)
    test_close(maple_lr_at(cfg5, 3), 0.0026 * 0.5 * (1 + math.cos(math.pi * 2 / 5)), eps=1e-9)
    from dg_literate.clip import load_clip
    from dg_literate.toyworld import CLASSES, ToyWorld
    c = load_clip("toyclip-tiny", device="cpu"); w = ToyWorld(7, seed=5)
    mp = MultimodalPrompts(c.model, c.tokenizer, n_ctx=2, depth=1)
    p0 = [p.detach().clone() for p in mp.parameters()]
    losses = train_maple(
        c.model,
        mp,
        mp.class_tokens(list(CLASSES)),
        [w.image("photo", i) for i in range(7)],
        w.labels("photo"),
        c.preprocess,
        MaPLeConfig(epochs=3, lr=0.05),
        progress=False,
    )
    test_eq(len(losses), 3 * 2)
    assert any(not torch.allclose(a, b) for a, b in zip(p0, mp.parameters()))        # the prompts moved
    assert all(p.grad is None for p in c.model.parameters())                          # the model did not


def test_promptsync_sharding():
    import dataclasses, tempfile
    from pathlib import Path
    from dg_literate.clip import load_clip
    from dg_literate.toyworld import CLASSES, ToyWorld
    # predictions vary by view
    c = load_clip("toyclip-vit", device="cpu"); m = freeze(c.model); names = list(CLASSES)
    mp = MultimodalPrompts(m, c.tokenizer, n_ctx=2, depth=2, seed=0); ct = mp.class_tokens(names)
    coop = MultimodalPrompts(m, c.tokenizer, n_ctx=4, depth=1, vision=False); w = ToyWorld(7, seed=5)
    src = proxy_source([w.image("photo", i) for i in range(7)], torch.arange(7), c.preprocess, c.tokenizer,
                       [[n] for n in names], n_views=2)
    s = TTASetup(
        m,
        coop,
        ct,
        {0: (mp, class_prototypes(m, mp, src, 7), source_token_stats(m, mp, src.views, (0,)))},
        src,
        {"sketch": [w.image("sketch", i) for i in range(6)]},
        {"sketch": list(range(7))},
        c.preprocess,
    )
    cfg = TTAConfig(n_views=4, source_batch=4, pa_layers=(0,))
    star = dataclasses.replace(cfg, reuse_every=2)
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        whole, _, cw = run_tta(s, "PromptSync*", 0, star, a, n_views=4, chunk=6, progress=False)
        parts, _, cp = run_tta(s, "PromptSync*", 0, star, b, n_views=4, chunk=2, progress=False)
        test_eq(parts, whole); test_close(cp["sketch"], cw["sketch"], eps=1e-5)
        test_eq(len(list(Path(b).glob("*.json"))), 3)        # three chunks, one file each
        cache, lit = {}, []                                                          # the literal loop over the images
        for i, im in enumerate(s.images["sketch"]):
            v = make_views(im, c.preprocess, 4, seed=i)
            lit.append(int(promptsync_adapt(m, mp, ct, v, s.maple[0][1], src, i, star, cache)[0].argmax()))
        test_eq(whole["sketch"], lit)
        test_eq(run_tta(s, "PromptSync*", 0, star, b, n_views=4, chunk=2, progress=False)[0], parts)   # read back
        with tempfile.TemporaryDirectory() as c3:                                    # chunks that cut a reuse block
            test_eq(run_tta(s, "PromptSync*", 0, star, c3, n_views=4, chunk=3, progress=False)[0], whole)
        other = dataclasses.replace(s, key="another setup")
        run_tta(other, "PromptSync*", 0, star, b, n_views=4, chunk=2, progress=False)
        test_eq(len(list(Path(b).glob("*.json"))), 6)                                # another setup: run, not read back
        test_fail(lambda: run_tta(s, "PromptSync", 0, star, b, n_views=4), contains="reuse_every = 0")
        test_fail(lambda: run_tta(s, "MaPLe", 1, cfg, b, n_views=4), contains="no MaPLe prompts for seed 1")
        test_fail(lambda: run_tta(s, "TTA", 0, cfg, b, n_views=4), contains="unknown method")


def test_expected_calibration_error_literal():
    def ece_literal(conf, correct, bins=15):
        total = 0.0
        for m in range(1, bins + 1):
            idx = [i for i, c in enumerate(conf) if (m - 1) / bins < c <= m / bins or (m == 1 and c == 0)]
            if idx:
                acc = sum(correct[i] for i in idx) / len(idx); cf = sum(conf[i] for i in idx) / len(idx)
                total += len(idx) / len(conf) * abs(acc - cf)
        return total * 100
    g = torch.Generator().manual_seed(0)
    conf = torch.rand(500, generator=g); correct = torch.rand(500, generator=g) < conf      # calibrated by construction
    test_close(expected_calibration_error(conf, correct), ece_literal(conf.tolist(), correct.tolist()), eps=1e-9)
    assert expected_calibration_error(conf, correct) < 6
    test_close(expected_calibration_error(torch.ones(10), torch.arange(10) < 5), 50.0)         # sure, half wrong
    test_close(expected_calibration_error(torch.tensor([1 / 15, 1.0]), torch.tensor([False, True])), 100 / 30)


def test_tpt_premise_matches_clip_and_tpt_selection():
    from dg_literate.clip import load_clip
    from dg_literate.toyworld import CLASSES, ToyWorld
    c = load_clip("toyclip-vit", device="cpu"); m = freeze(c.model); names = list(CLASSES); w = ToyWorld(7, seed=5)
    coop = MultimodalPrompts(m, c.tokenizer, n_ctx=4, depth=1, vision=False); ct = coop.class_tokens(names)
    ims, y = [w.image("sketch", i) for i in range(7)], w.labels("sketch")
    s = TTASetup(m, coop, ct, {}, None, {"sketch": ims}, {"sketch": list(range(7))}, c.preprocess)
    r = tpt_premise(s, "sketch", y, n_views=8, top=0.25)
    lit = dict(original=[], confident_mean=[], all_mean=[])       # literally: TPT's own selection, image by image
    for i, im in enumerate(ims):
        v = make_views(im, c.preprocess, 8, seed=i)
        orig = adapt_logits(s, "CLIP", None, v, i, TTAConfig())           # the CLIP method's prediction
        idx = confident(m, coop, v, ct, 0.25); test_eq(len(idx), 2)
        p = coop.logits(m, v, ct).softmax(1)
        lit["original"].append(int(orig.argmax() == y[i])); lit["all_mean"].append(int(p.mean(0).argmax() == y[i]))
        lit["confident_mean"].append(int(p[idx].mean(0).argmax() == y[i]))
    test_eq(r, {k: 100 * sum(v) / 7 for k, v in lit.items()})
    test_eq(tpt_premise(s, "sketch", y[:3], n_views=8, top=0.25), {k: 100 * sum(v[:3]) / 3 for k, v in lit.items()})
