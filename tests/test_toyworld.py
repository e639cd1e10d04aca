"""Tests exported from nbs/03_toyworld.ipynb by `dg-export-tests`. DO NOT EDIT: edit the notebook."""

from dg_literate.toyworld import *

from fastcore.test import *
from fastcore.xtras import modified_env
import re, numpy as np, torch
from pathlib import Path
from dg_literate.data import loo_split


def test_deterministic_per_item():
    a = render_items(0, "photo", [5, 9, 2, 11])
    b = render_items(0, "photo", [2])
    test_eq(a[2], b[0])  # independent of the batch it is rendered in
    test_eq(render_items(0, "sketch", [3]), render_items(0, "sketch", [3]))
    assert (render_items(1, "photo", [2]) != b).any()                     # another seed, another image
    assert (render_items(0, "cartoon", [2]) != b).any()                   # another domain, another draw
    f = sample_factors(0, "photo", range(14)); test_eq(f["cls"].tolist(), [i % 7 for i in range(14)])
    test_fail(lambda: sample_factors(0, "oil", [0]), contains="unknown toy-world domain")


def test_factor_labels_hold():
    f = sample_factors(3, "clipart", range(280))
    img, mask = render(f, "clipart", return_mask=True)
    inside = mask > 0.99
    # the filled pixels have the item's color
    solid = inside.sum((1, 2)) >= 5  # thin small crescents may have no interior pixel
    rgb = torch.stack(
        [img[i].float().permute(1, 2, 0)[inside[i]].mean(0) / 255 for i in range(len(img)) if solid[i]]
    )
    assert solid.float().mean() > 0.95
    test_close(rgb, torch.tensor(list(COLORS.values()))[f["color"][solid]], eps=0.03)
    # the mask's centroid is the item's position; its area grows with size
    S = 64; ys, xs = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
    s = torch.tensor(list(SIZES.values()))[f["size"]]; margin = (1 - s * 1.05).clamp(0.05, 0.25) * 0.8
    cx = ((f["cx"] * 2 - 1) * margin + 1) / 2 * S - 0.5; cy = (1 - (f["cy"] * 2 - 1) * margin) / 2 * S - 0.5
    area = mask.sum((1, 2))
    mx = (mask * xs).sum((1, 2)) / area; my = (mask * ys).sum((1, 2)) / area
    # centroid off-center by design
    ring_or_moon = ((f["cls"] == 6) | ((f["cls"] == 0) & (f["variant"] == 1)) | (f["cls"] == 5))
    assert ((mx - cx).abs()[~ring_or_moon] < 3).all() and ((my - cy).abs()[~ring_or_moon] < 3).all()
    means = [area[f["size"] == k].mean() for k in range(3)]; assert means[0] < means[1] < means[2]
    # sketches and sculptures do not show the color: their images do not depend on it
    g = dict(f); g["color"] = (f["color"] + 3) % 10
    test_eq(render(f, "sketch"), render(g, "sketch")); test_eq(render(f, "sculpture"), render(g, "sculpture"))
    assert (render(f, "cartoon") != render(g, "cartoon")).any()


def test_caption_grammar():
    idx = list(range(400))
    for d in ALL_DOMAINS:
        f = sample_factors(0, d, idx); caps = captions(f, 0, d, idx)
        test_eq(caps, captions(f, 0, d, idx))                             # deterministic
        for c, k, col, sz in zip(caps, f["cls"].tolist(), f["color"].tolist(), f["size"].tolist()):
            words = c.split()
            assert not re.search(r"\ba [aeiou]", c) and "  " not in c and "{" not in c, c   # articles, no holes
            if "object" not in words and not re.fullmatch(r"a (simple|detailed) \w+", c):
                assert words[-1] == CLASSES[k], c  # the class name ends every content caption
            for other in set(COLORS) - {list(COLORS)[col]}: assert other not in words, c
            if d in COLORLESS: assert not set(words) & set(COLORS), c
        assert any(c.startswith(("a simple", "a detailed")) and c.endswith(CLASSES[0]) for c in caps)
    test_eq(
        fill_template(TEMPLATES[0][0], "art_painting", 0, 1, 2, 1), "a detailed painting of a large orange circle"
    )
    test_eq(fill_template(TEMPLATES[3][0], "photo", 5, 1, 0, 0), "an orange heart")
    test_eq(fill_template(TEMPLATES[0][0], "sketch", 6, 1, 1, 0), "a simple sketch of a normal sized moon")


def test_toyworld_is_a_domain_dataset():
    from dg_literate.data import get_dataset
    tw = get_dataset("toyworld", n_per_domain=70, seed=1)
    test_eq(tw.domains, list(DOMAINS)); test_eq(tw.classes, list(CLASSES))
    test_eq(tw.labels("sketch").bincount().tolist(), [10] * 7)
    s = loo_split(tw, "sketch", seed=0)
    test_eq((len(s.train), len(s.val), len(s.test)), (168, 42, 70))
    x, y, d = s.test[3]; test_eq((x.size, x.mode, y, d), ((64, 64), "RGB", 3, 3))
    test_eq(np.asarray(tw.image("photo", 5)), tw.images("photo")[5].permute(1, 2, 0).numpy())
    test_eq(tw.images("photo")[5], render_items(1, "photo", [5])[0])
    test_eq(tw.factors("cartoon")["cls"].tolist(), tw.labels("cartoon").tolist())
    assert "seed=1" in s.test.datasets[0].cache_key
    test_fail(lambda: ToyWorld(10, domains=("photo", "oil")), contains="unknown toy-world domain")


def test_web_stream():
    x0, c0, f0 = web_batch(3, 32); x1, c1, f1 = web_batch(3, 32)
    test_eq(x0, x1); test_eq(c0, c1); test_eq(x0.shape, (32, 3, 64, 64)); assert (web_batch(4, 32)[0] != x0).any()
    for i in range(32):  # slot i's image, caption and factors belong together
        # some templates name no class
        assert not any(c in c0[i] for c in CLASSES if c != CLASSES[f0["cls"][i]]), (c0[i], f0["cls"][i])
        d, k = f0["domain"][i], 3 * 32 + i
        test_eq(x0[i], render_items(1000, d, [k])[0])
    doms = sum((web_batch(s, 64)[2]["domain"] for s in range(30)), [])
    share = {d: doms.count(d) / len(doms) for d, _ in WEB_MIX}
    assert 0.43 < share["photo"] < 0.57 and share["sketch"] < 0.1, share
    test_fail(lambda: web_batch(0, 4, mix=(("photograph", 1.0),)), contains="unknown toy-world domain")
