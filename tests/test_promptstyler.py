"""Tests exported from nbs/20_promptstyler.ipynb by `dg-export-tests`. DO NOT EDIT: edit the notebook."""

from dg_literate.promptstyler import *

from fastcore.test import *
import math, torch, torch.nn.functional as F

def style_diversity_literal(u_i, u_prev):
    if len(u_prev) == 0: return torch.tensor(0.0)
    total = 0.0
    for u_j in u_prev:
        total = total + abs(torch.dot(u_i, u_j) / (u_i.norm() * u_j.norm()))
    return total / len(u_prev)

def content_consistency_literal(v, c, tau=1.0):
    N, total = len(v), 0.0
    for m in range(N):
        z = [torch.dot(v[m], c[n]) / (v[m].norm() * c[n].norm()) / tau for n in range(N)]
        total = total - torch.log(torch.exp(z[m]) / sum(torch.exp(zn) for zn in z))
    return total / N

def arcface_literal(f, W, y, scale=5.0, margin=0.5):
    out = torch.empty(len(f), len(W))
    for b in range(len(f)):
        for j in range(len(W)):
            cos = torch.dot(f[b], W[j]) / (f[b].norm() * W[j].norm())
            if y is not None and j == y[b]:
                theta = torch.acos(cos.clamp(-1, 1))
                cos = (
                    torch.cos(theta + margin)
                    if theta + margin <= math.pi
                    else cos - margin * math.sin(margin)
                )
            out[b, j] = scale * cos
    return out


def test_style_orthogonality_loss():
    g = torch.Generator().manual_seed(0)
    f_i, f_prev = torch.randn(16, generator=g), torch.randn(5, 16, generator=g)
    test_close(style_diversity_loss(f_i, f_prev), style_diversity_literal(f_i, f_prev), eps=1e-6)
    e = torch.eye(4)
    test_eq(style_diversity_loss(e[0], e[1:]).item(), 0.0)                          # orthogonal: 0
    test_close(style_diversity_loss(3 * e[0], e[:1]), 1.0, eps=1e-6)                 # identical direction: 1
    test_close(style_diversity_loss(-e[0], e[:1]), 1.0, eps=1e-6)                    # opposite direction: also 1
    test_close(style_diversity_loss(f_i, f_prev), style_diversity_loss(-f_i, -f_prev), eps=1e-6)
    first = style_diversity_loss(f_i.requires_grad_(), torch.empty(0, 16))
    # i = 1: defined, zero gradient
    test_eq(first.item(), 0.0); first.backward(); test_eq(f_i.grad, torch.zeros(16))
    x = torch.tensor([1.0, 0.2, 0.0, 0.0], requires_grad=True)
    style_diversity_loss(x, e[:1]).backward()
    with torch.no_grad(): assert style_diversity_loss(x - 0.1 * x.grad, e[:1]) < style_diversity_loss(x, e[:1])


def test_content_consistency_is_cross_entropy():
    g = torch.Generator().manual_seed(1)
    v, c = torch.randn(7, 32, generator=g), torch.randn(7, 32, generator=g)
    for tau in (1.0, 0.07):
        test_close(content_consistency_loss(v, c, tau), content_consistency_literal(v, c, tau), eps=1e-5)
        z = F.cosine_similarity(v[:, None], c[None], dim=-1) / tau
        test_close(content_consistency_loss(v, c, tau), F.cross_entropy(z, torch.arange(7)), eps=1e-5)
    test_close(
        content_consistency_loss(c, c),
        -torch.log_softmax(F.normalize(c, dim=-1) @ F.normalize(c, dim=-1).T, 1).diag().mean(),
        eps=1e-5,
    )
    # near its own content: lower
    assert content_consistency_loss(c + 0.01 * v, c) < content_consistency_loss(v, c)


def test_style_learning_paths_agree_and_resume():
    import dataclasses, tempfile
    from pathlib import Path
    from dg_literate.clip import load_clip, encode_text, token_id, text_tower
    from dg_literate.toyworld import CLASSES
    c = load_clip("toyclip-tiny", device="cpu"); names = list(CLASSES)
    cfg = PromptStylerConfig(n_styles=3, iters=8, lr=0.05, seed=3)
    star = token_id(c.tokenizer, "*"); toks = c.tokenizer(style_prompts(names))
    with torch.no_grad(): f_c = encode_text(c.model, c.tokenizer(names), normalize=True)
    s0 = torch.randn(text_tower(c.model).token_embedding.weight.shape[1]) * 0.02
    with frozen(c.model):
        s_b, l_b = learn_style(c.model, toks, star, s0, torch.empty(0, f_c.shape[1]), f_c, cfg, batched=True)
        s_l, l_l = learn_style(c.model, toks, star, s0, torch.empty(0, f_c.shape[1]), f_c, cfg, batched=False)
    test_close(l_b, l_l, eps=1e-4); test_close(s_b, s_l, eps=1e-4)
    assert not (s_b == s0).all() and all(p.grad is None for p in c.model.parameters())
    assert all(p.requires_grad for p in c.model.parameters())                # `frozen` restored the flags
    out = learn_style_vectors(c.model, c.tokenizer, names, cfg, progress=False)
    test_eq(out["styles"].shape, (3, 64)); test_eq(out["losses"].shape, (3, 8, 2))
    f, y = style_content_features(c.model, c.tokenizer, names, out["styles"], cfg)
    test_eq(f.shape, (21, f_c.shape[1])); test_eq(y[:8].tolist(), [0, 1, 2, 3, 4, 5, 6, 0])
    with tempfile.TemporaryDirectory() as t:
        two = learn_style_vectors(
            c.model,
            c.tokenizer,
            names,
            dataclasses.replace(cfg, n_styles=2),
            ckpt=Path(t) / "a.pt",
            progress=False,
        )
        test_close(two["styles"], out["styles"][:2], eps=1e-6)                         # K=2 is the prefix of K=3
        resumed = learn_style_vectors(c.model, c.tokenizer, names, cfg, ckpt=Path(t)/"a.pt", progress=False)
        test_close(resumed["styles"], out["styles"], eps=1e-6)  # resumed from 2 styles to 3
        test_fail(
            lambda: learn_style_vectors(
                c.model,
                c.tokenizer,
                names,
                dataclasses.replace(cfg, lr=0.1),
                ckpt=Path(t) / "a.pt",
                progress=False,
            ),
            contains="another config",
        )
        other = load_clip("toyclip-tiny", device="cpu").model
        with torch.no_grad(): other.token_embedding.weight.mul_(1.01)
        test_fail(
            lambda: learn_style_vectors(other, c.tokenizer, names, cfg, ckpt=Path(t) / "a.pt", progress=False),
            contains="text encoder",
        )


def test_learned_style_keeps_class():
    import open_clip
    from dg_literate.clip import encode_text
    from dg_literate.toyworld import CLASSES
    torch.manual_seed(0); names = list(CLASSES)
    from dg_literate.toyclip import TOYCLIP_TINY
    # untrained: the test trains its text tower
    m = open_clip.CLIP(**TOYCLIP_TINY.model_cfg()); tok = open_clip.get_tokenizer("ViT-B-16")
    words = ["red", "small", "large", "photo", "sketch", "striped", "blue", "old"]
    a = tok(
        [
            t.format(w=w, n=n)
            for n in names
            for w in words
            for t in ("a {w} {n}", "a {w} of a {n}", "the {n} in {w}")
        ]
    )
    b = tok(names)
    lab = torch.arange(len(names)).repeat_interleave(3 * len(words))
    opt = torch.optim.Adam([p for k, p in m.named_parameters() if not k.startswith("visual")], 3e-3)
    for _ in range(60):
        loss = F.cross_entropy(
            encode_text(m, a, normalize=True) @ encode_text(m, b, normalize=True).T / 0.05, lab
        )
        opt.zero_grad(); loss.backward(); opt.step()
    m.eval(); cfg = PromptStylerConfig(n_styles=1, iters=20, seed=0)
    out = learn_style_vectors(m, tok, names, cfg, progress=False)
    f, y = style_content_features(m, tok, names, out["styles"], cfg)
    with torch.no_grad():
        f_c = encode_text(m, b, normalize=True)
        plain = encode_text(m, tok([f"a style of a {n}" for n in names]), normalize=True)
    assert ((f * plain).sum(-1) < 0.999).all()                                # the style word changes the feature
    assert out["losses"][0, -1, 1] < out["losses"][0, 0, 1]                   # L_content went down
    test_eq((f @ f_c.T).argmax(1), y)                                         # every class recognizable


def test_arcface_margin():
    g = torch.Generator().manual_seed(2)
    f, W, y = torch.randn(6, 8, generator=g), torch.randn(4, 8, generator=g), torch.tensor([0, 1, 2, 3, 0, 1])
    for margin in (0.5, 1.2, 0.0):
        test_close(arcface_logits(f, W, y, 5.0, margin), arcface_literal(f, W, y, 5.0, margin), eps=1e-4)
    cos_logits = 5.0 * F.normalize(f, dim=-1) @ F.normalize(W, dim=-1).T
    test_close(arcface_logits(f, W, y, 5.0, 0.0), cos_logits, eps=1e-6)  # no margin: the scaled cosine
    test_close(F.cross_entropy(arcface_logits(f, W, y, 5.0, 0.0), y), F.cross_entropy(cos_logits, y), eps=1e-6)
    test_close(arcface_logits(f, W, None), cos_logits, eps=1e-6)  # inference: no margin
    mask = F.one_hot(y, 4).bool()
    assert (arcface_logits(f, W, y)[mask] < cos_logits[mask]).all()  # the margin lowers the target logit
    test_close(arcface_logits(f, W, y)[~mask], cos_logits[~mask], eps=1e-6)  # and only it
    theta = torch.linspace(0.01, math.pi - 0.01, 200)
    t = arcface_logits(
        torch.stack([torch.cos(theta), torch.sin(theta)], 1),
        torch.tensor([[1.0, 0.0]]),
        torch.zeros(200, dtype=torch.long),
    )[:, 0]
    assert (t[1:] < t[:-1]).all()  # monotone in the angle


def test_promptstyler_end_to_end():
    import torch.nn.functional as F
    from dg_literate.clip import load_clip
    from dg_literate.toyworld import CLASSES, ToyWorld
    c = load_clip("toyclip-tiny", device="cpu")
    ps = PromptStyler.fit(
        c.model, c.tokenizer, list(CLASSES), PromptStylerConfig(n_styles=2, iters=3, epochs=2), progress=False
    )
    x = torch.stack([c.preprocess(ToyWorld(7, seed=1).image("sketch", i)) for i in range(7)])
    test_eq(ps(x).shape, (7, 7)); test_eq(ps.log["features"].shape[0], 14)
    with torch.no_grad(): f = F.normalize(c.model.encode_image(x), dim=-1)
    test_close(ps(x), ps.classify_features(f), eps=1e-5)


def test_promptstyler_job_and_rebuild():
    import tempfile, torch.nn.functional as F
    from dataclasses import asdict
    from dg_literate.clip import load_clip
    from dg_literate.launch import Job, run_jobs
    from dg_literate.toyworld import CLASSES, ToyWorld
    c = load_clip("toyclip-tiny", device="cpu")
    x = torch.stack([c.preprocess(ToyWorld(7, seed=1).image("sketch", i)) for i in range(7)])
    with torch.no_grad(): f = F.normalize(c.model.encode_image(x), dim=-1)
    F_img = {"sketch": (f, torch.arange(7))}
    job = dict(classnames=list(CLASSES), seed=0, cfg=asdict(PromptStylerConfig(n_styles=2, iters=3, epochs=2)))
    with tempfile.TemporaryDirectory() as t:
        r, = run_jobs([Job("s0", promptstyler_job, job)], (c, F_img), t, progress=False)
        # read back from its files
        back, = run_jobs([Job("s0", promptstyler_job, job)], (c, F_img), t, progress=False)
    ps0 = PromptStyler.fit(
        c.model, c.tokenizer, list(CLASSES), PromptStylerConfig(n_styles=2, iters=3, epochs=2), progress=False
    )
    test_close(r["tensors"]["styles"], ps0.styles, eps=1e-6)
    test_close(back["tensors"]["head"], ps0.head.weight, eps=1e-6)
    test_close(
        r["acc"]["sketch"], (ps0.classify_features(f).argmax(1) == torch.arange(7)).float().mean().item() * 100
    )
    ps1 = promptstyler_from(c.model, c.tokenizer, back)
    test_close(ps1.classify_features(f), ps0.classify_features(f), eps=1e-5)
    test_close(ps1.log["features"], ps0.log["features"], eps=1e-5); test_eq(ps1.log["labels"], ps0.log["labels"])


def test_promptstyler_on_real_pacs_folder():
    from dg_literate.core import skip
    from dg_literate.clip import load_clip, image_features
    from dg_literate.data import find_data_root, get_dataset
    if find_data_root("PACS") is None: skip("PACS not found: set DG_LITERATE_DATA to the folder holding PACS/")
    else:
        # the real folder path, with a tiny model
        pacs = get_dataset("PACS", cut=False); c = load_clip("toyclip-tiny", device="cpu")
        ps = PromptStyler.fit(
            c.model, c.tokenizer, pacs.classes, PromptStylerConfig(n_styles=2, iters=2, epochs=1), progress=False
        )
        f, y = image_features(
            c, pacs.subset("sketch", range(0, 3929, 500), transform=c.preprocess), progress=False
        )
        test_eq(ps.classify_features(f).shape, (8, 7))
        test_eq(y, pacs.labels("sketch")[list(range(0, 3929, 500))])
