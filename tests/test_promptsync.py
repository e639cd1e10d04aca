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
            d = protos[m][c]
            amp = math.log(1 + sum((a - b) ** 2 for a, b in zip(p_x[m].tolist(), d.tolist())) / len(d))
            ang = 1 - torch.dot(p_x[m], d).item() / (p_x[m].norm() * d.norm()).item()
            total += p_bar[c].item() * (amp + ang)
    return total / len(p_x)

def discrimination_literal(z, y, h, tau):
    s = lambda a, b: (torch.dot(a, b) / (a.norm() * b.norm())).item() / tau
    losses = []
    for k in sorted(set(y.tolist())):
        pos = sum(math.exp(s(z[i], h[k])) for i in range(len(z)) if y[i] == k)
        neg = sum(math.exp(s(h[k], h[j])) for j in range(len(h)) if j != k)
        neg += sum(math.exp(s(z[i], h[j])) for i in range(len(z)) if y[i] == k for j in range(len(h)) if j != k)
        neg += sum(math.exp(s(h[k], z[i])) for i in range(len(z)) if y[i] != k)
        losses.append(-math.log(pos / (pos + neg)))
    return sum(losses) / len(losses)


def test_prompted_towers_reproduce_open_clip():
    from dg_literate.clip import load_clip, encode_text
    from dg_literate.toyworld import CLASSES, ToyWorld
    c = load_clip("toyclip-tiny", device="cpu")
    x = torch.stack([c.preprocess(ToyWorld(7, seed=3).image("sketch", i)) for i in range(7)])
    t = c.tokenizer([f"a photo of a {n}." for n in CLASSES])
    with torch.no_grad():
        fi, rec = vision_forward(c.model.visual, x, None, record=1)
        test_close(fi, c.model.encode_image(x), eps=1e-5); test_eq(len(rec), 1); test_eq(rec[0].shape, (7, 64))
        ft, rt = text_forward(c.model, t, record=1)
        test_close(ft, encode_text(c.model, t), eps=1e-5); test_eq(rt[0].shape, (7, 64))
        mp = MultimodalPrompts(c.model, c.tokenizer, n_ctx=4, depth=1, vision=False)   # context = the words' own embeddings
        fi2, ft2, _ = mp.encode(c.model, x, mp.class_tokens(list(CLASSES)))
        test_close(ft2, F.normalize(encode_text(c.model, t), dim=-1), eps=1e-5)     # a CoOp prompt at its initialization is CLIP
        test_close(fi2, F.normalize(c.model.encode_image(x), dim=-1), eps=1e-5)
        mm = MultimodalPrompts(c.model, c.tokenizer, n_ctx=2, depth=3)
        fi3, ft3, r3 = mm.encode(c.model, x, mm.class_tokens(list(CLASSES)), record=3)
        assert not torch.allclose(fi3, fi2, atol=1e-4)                              # vision prompts change the image features
        test_eq(len(r3["vision"]), 1); test_eq(len(r3["text"]), 1)                  # toyclip-tiny has one layer per tower
        test_eq([len(v) for v in mm.vision_prompts()], [2, 2, 2])


def test_confidence_selection_and_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 7, generator=g) * 3
    for top, n in ((0.1, 6), (0.25, 16), (1.0, 64), (0.001, 1)):
        idx = select_confident(logits, top); test_eq(len(idx), n)                   # exactly floor(top*N), at least 1
        ent = -(logits.softmax(1) * logits.log_softmax(1)).sum(1)
        assert ent[idx].max() <= ent[[i for i in range(64) if i not in idx.tolist()]].min() if n < 64 else True
    test_close(avg_entropy(logits[:6]), avg_entropy_literal(logits[:6]), eps=1e-5)
    test_close(avg_entropy(torch.zeros(3, 7)), math.log(7), eps=1e-5)              # uniform: log C
    assert avg_entropy(torch.tensor([[20.0, 0, 0], [20.0, 0, 0]])) < 1e-6            # confident and agreeing: ~0
    v = make_views(torch.rand(3, 16, 16), 8, generator=torch.Generator().manual_seed(1))
    test_eq(v.shape, (8, 3, 16, 16)); assert not torch.allclose(v[1], v[0])
    test_eq(make_views(torch.ones(3, 16, 16) * 0.5, 4)[3], torch.ones(3, 16, 16) * 0.5)   # crops of a flat image stay flat


def test_prototype_alignment_loss():
    g = torch.Generator().manual_seed(0)
    protos = [torch.randn(5, 16, generator=g) for _ in range(3)]
    p_x = [torch.randn(16, generator=g) for _ in range(3)]
    p_bar = torch.softmax(torch.randn(5, generator=g), 0)
    test_close(prototype_alignment_loss(p_x, protos, p_bar)[0], alignment_literal(p_x, protos, p_bar), eps=1e-4)
    own = [v[2] for v in protos]; onehot = F.one_hot(torch.tensor(2), 5).float()
    loss, amp, ang = prototype_alignment_loss(own, protos, onehot)
    test_close(loss, 0.0, eps=1e-5); test_close(amp[:, 2], torch.zeros(3), eps=1e-6); test_close(ang[:, 2], torch.zeros(3), eps=1e-5)
    near = [v[2] + 0.1 * torch.randn(16, generator=g) for v in protos]; far = [v[2] + 1.0 * (n - v[2]) * 10 for v, n in zip(protos, near)]
    assert prototype_alignment_loss(near, protos, onehot)[0] < prototype_alignment_loss(far, protos, onehot)[0]        # grows with distance
    rot = [torch.cat([v[2][8:], v[2][:8]]) for v in protos]                          # same norm, another angle
    assert prototype_alignment_loss(rot, protos, onehot)[2][:, 2].min() > 0.05
    test_close(prototype_alignment_loss(p_x, protos, onehot)[0], (prototype_alignment_loss(p_x, protos, onehot)[1][:, 2] + prototype_alignment_loss(p_x, protos, onehot)[2][:, 2]).mean(), eps=1e-6)  # routed to class 2 only
    px = [p.clone().requires_grad_() for p in own]
    prototype_alignment_loss(px, protos, F.one_hot(torch.tensor(0), 5).float())[0].backward()
    with torch.no_grad():                                                            # a step pulls toward the likely class's prototype
        stepped = [p - 0.5 * p.grad for p in px]
        assert sum(F.mse_loss(s, v[0]) for s, v in zip(stepped, protos)) < sum(F.mse_loss(p, v[0]) for p, v in zip(own, protos))


def test_prototype_discrimination_loss():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(5, 16, generator=g); z = torch.randn(9, 16, generator=g); y = torch.tensor([0, 0, 1, 3, 3, 3, 4, 1, 0])
    for tau in (0.1, 0.5, 1.0):
        test_close(prototype_discrimination_loss(z, y, h, tau), discrimination_literal(z, y, h, tau), eps=1e-4)
    toward = h[y] + 0.3 * z                                                           # views moved toward their own prototype
    assert prototype_discrimination_loss(toward, y, h) < prototype_discrimination_loss(z, y, h)
    assert prototype_discrimination_loss(h[y], y, h, 0.5) < prototype_discrimination_loss(z, y, h, 0.5)   # views at their prototypes
    other = h[(y + 1) % 5]                                                            # views at another class's prototype: worse
    assert prototype_discrimination_loss(other, y, h) > prototype_discrimination_loss(z, y, h)
    hs = h.clone(); hs[1] = h[0] * 0.9 + 0.1 * h[1]                                   # prototypes that collide discriminate worse
    assert prototype_discrimination_loss(h[y], y, hs) > prototype_discrimination_loss(h[y], y, h)
    zz = z.clone().requires_grad_(); prototype_discrimination_loss(zz, y, h).backward(); assert zz.grad.abs().sum() > 0


def test_adaptation_touches_only_prompts_and_resets():
    from dg_literate.clip import load_clip
    from dg_literate.toyworld import CLASSES, ToyWorld
    c = load_clip("toyclip-tiny", device="cpu"); model = freeze(c.model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mp = MultimodalPrompts(model, c.tokenizer, n_ctx=2, depth=3)
    ct = mp.class_tokens(list(CLASSES))
    w = ToyWorld(14, seed=4); x = torch.stack([c.preprocess(w.image("photo", i)) for i in range(14)])
    protos = class_prototypes(model, mp, ct, x, w.labels("photo"), n_views=2)
    test_eq(len(protos.vision), 1); test_eq(protos.vision[0].shape, (7, 64)); test_eq(protos.text[0].shape, (7, 64))
    p0 = {k: v.clone() for k, v in mp.state_dict().items()}
    cfg = TTAConfig(n_views=8, lr=0.5, inner_lr=0.5)
    seen = []
    orig_step = torch.optim.AdamW.step
    def spy(self, *a, **k):
        seen.append([p.detach().clone() for g in self.param_groups for p in g["params"]]); return orig_step(self, *a, **k)
    torch.optim.AdamW.step = spy
    try:
        out_t = tpt_adapt(model, mp, ct, x[0], cfg)
        out_s, log = promptsync_adapt(model, mp, ct, x[1], protos, cfg)
    finally: torch.optim.AdamW.step = orig_step
    test_eq(out_t.shape, (7,)); test_eq(out_s.shape, (7,)); assert log["disc"] > 0 and log["align"] > 0
    for k, v in mp.state_dict().items(): test_eq(v, p0[k])                       # prompts reset after each sample
    for k, v in model.state_dict().items(): test_eq(v, before[k])                 # the model is untouched
    assert all(p.grad is None for p in model.parameters())                        # and got no gradient
    assert len(seen) == 2
    with torch.no_grad(): zs = mp.logits(model, x[:2], ct)
    assert not torch.allclose(out_s, zs[1], atol=1e-5)                             # the adapted prompt predicted differently
    cache, logs = {}, []
    for i in range(4): logs.append(promptsync_adapt(model, mp, ct, x[i], protos, TTAConfig(n_views=8, reuse_every=2), cache)[1]["reused"])
    test_eq(logs, [False, True, False, True])                                      # PromptSync*: g_D recomputed every 2 samples
    views = make_views(x[5], 16)
    logits_all = mp.logits(model, views, ct)
    g_full = torch.autograd.grad(avg_entropy(logits_all[select_confident(logits_all, 0.25)]), [mp.ctx, mp.couple[0].weight])
    g_conf = torch.autograd.grad(avg_entropy(confident_forward(model, mp, views, ct, 0.25)[0]), [mp.ctx, mp.couple[0].weight])
    for a_, b_ in zip(g_full, g_conf): test_close(a_, b_, eps=1e-5)                    # same gradient through the confident views only
