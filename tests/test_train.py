"""Tests exported from nbs/07_train.ipynb by `dg-export-tests`. DO NOT EDIT: edit the notebook."""

from dg_literate.train import *

from fastcore.test import *
import math, tempfile, torch, torch.nn as nn, torch.nn.functional as F
from pathlib import Path
from dg_literate.toynet import IMAGENET_MEAN, IMAGENET_STD

class _Data:
    def __init__(self, n=96, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.y = torch.randint(0, 3, (n,), generator=g); self.dom = torch.arange(n) % 3
        base = torch.rand(3, 3, 1, 1, generator=g) * 200
        self.x = (base[self.y] + 40 * torch.rand(n, 3, 16, 16, generator=g)).clamp(0, 255).to(torch.uint8)
        self.xv, self.yv = self.x[:30], self.y[:30]; self.test = {"t": (self.x[30:60], self.y[30:60])}
def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 3),
    )


def test_caches_follow_the_files():
    # decoded images and CLIP features are keyed on the files: delete or replace images and both caches see it
    import numpy as np
    from fastcore.xtras import modified_env
    from PIL import Image
    from dg_literate.data import FolderDomainDataset
    from dg_literate.clip import load_clip, image_features
    with tempfile.TemporaryDirectory() as t, modified_env(DG_LITERATE_CACHE=f"{t}/cache"):
        rng = np.random.default_rng(0)
        for c in ("cat", "dog"):
            (Path(t)/"D"/"photo"/c).mkdir(parents=True)
            for i in range(6):
                Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(Path(t)/"D"/"photo"/c/f"{i}.png")
        clip = load_clip("toyclip", device="cpu")
        feats = lambda ds: image_features(clip, ds.subset("photo", transform=clip.preprocess), progress=False)[0]
        ds = FolderDomainDataset(Path(t)/"D"); x0, y0 = domain_tensors(ds, "photo", 32, progress=False); f0 = feats(ds)
        test_eq(domain_tensors(FolderDomainDataset(Path(t)/"D"), "photo", 32, progress=False)[0], x0)   # cached
        for i in range(3): (Path(t)/"D"/"photo"/"cat"/f"{i}.png").unlink()        # three images deleted
        ds = FolderDomainDataset(Path(t)/"D"); x1, y1 = domain_tensors(ds, "photo", 32, progress=False)
        test_eq((len(x1), len(y1), y1.tolist()), (9, 9, [0] * 3 + [1] * 6)); test_eq(x1, x0[3:])
        test_eq(len(feats(ds)), 9); test_close(feats(ds), f0[3:], eps=1e-5)
        for f in (Path(t)/"D"/"photo").rglob("*.png"): Image.new("RGB", (40, 40)).save(f)   # every image black
        ds = FolderDomainDataset(Path(t)/"D"); x2, _ = domain_tensors(ds, "photo", 32, progress=False)
        test_eq(x2.float().mean().item(), 0.0)
        f2 = feats(ds); test_close(f2, f2[:1].expand_as(f2), eps=1e-5)            # one feature: all images alike
        assert (f2[0] - f0[3]).abs().max() > 1e-2


def test_domain_batches_balance_domains():
    g = torch.Generator().manual_seed(0)
    dom = torch.tensor([0] * 40 + [1] * 30 + [2] * 50)
    bs = domain_batches(dom, 8, 2, g)
    for b in bs:
        test_eq(len(b), 8); d = dom[b]
        # two domains, 4 each
        test_eq(len(d.unique()), 2); test_eq(sorted((d == u).sum().item() for u in d.unique()), [4, 4])
    allidx = torch.cat(bs); test_eq(len(allidx.unique()), len(allidx))              # no image twice in an epoch
    assert len(bs) >= 10
    test_eq([len(b) for b in domain_batches(dom, 8, 0, g)], [8] * 15)                # plain random batches
    test_fail(lambda: domain_batches(dom, 9, 2, g), contains="multiple of n_domain")
    test_eq(len(domain_batches(dom[:5], 8, 2, g)), 1)
    test_eq(sorted(domain_batches(dom[:5], 8, 0, g)[0].tolist()), list(range(5)))


def test_augment_and_normalize():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    for kind in ("translate", "flipcrop", "flip", "none"):
        a = augment(x, g, kind); test_eq(a.shape, (16, 3, 32, 32)); assert a.dtype == torch.float32
    test_eq(augment(x, g, "none"), x.float())
    a = augment(x, torch.Generator().manual_seed(1), "flip")
    kept = (a == x.float()).flatten(1).all(1); flipped = (a == x.float().flip(-1)).flatten(1).all(1)
    assert (kept | flipped).all() and 2 <= flipped.sum() <= 14  # each image flipped or not, about half
    flat = torch.full((4, 3, 16, 16), 77, dtype=torch.uint8)
    test_close(augment(flat, g, "translate"), flat.float(), eps=1e-4)  # a translated flat image stays flat
    test_fail(lambda: augment(x, g, "rotate"), contains="'translate'")
    n = normalize(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8))
    test_close(n[0, :, 0, 0], torch.tensor([(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]), eps=1e-5)


def test_trainer_resume_selection_and_hooks():
    cfg = TrainConfig(epochs=3, batch_size=12, lr=0.1, n_domain=3)
    with tempfile.TemporaryDirectory() as t:
        a = Trainer(_net(), _Data(), cfg, ckpt=Path(t)/"a.pt", progress=False); ra = a.fit()
        b = Trainer(_net(), _Data(), cfg, ckpt=Path(t)/"b.pt", progress=False); rb1 = b.fit(stop_after=1)
        test_eq(rb1["epochs_run"], 1)
        # a fresh process resumes
        b2 = Trainer(_net(seed=5), _Data(), cfg, ckpt=Path(t)/"b.pt", progress=False); rb = b2.fit()
        for k, v in a.model.state_dict().items(): test_eq(v, b2.model.state_dict()[k])
        test_eq(ra["history"], rb["history"]); test_eq(ra["t"], rb["t"]); test_eq(rb["epochs_run"], 3)
    class Spoil(Hook):  # ruins the model in the last epoch
        def __init__(self): self.steps = 0
        def before_epoch(self, tr):
            if tr.epoch == tr.cfg.epochs - 1:
                with torch.no_grad(): tr.model[-1].weight.mul_(-1)
        def loss(self, tr): self.steps += 1; return 0.0 * tr.logits.sum()
    s = Spoil()
    tr = Trainer(_net(), _Data(), TrainConfig(epochs=4, batch_size=12, lr=0.1), hooks=[s], progress=False)
    r = tr.fit()
    test_eq(s.steps, tr.step); test_eq(tr.step, 4 * tr.per_epoch)                       # the hook saw every step
    test_eq(r["epoch"], max(range(4), key=lambda i: (r["history"][i], -i)) + 1)
    test_eq(r["val"], max(r["history"]))
    assert r["history"][-1] < r["val"] and r["epoch"] < 4  # the spoiled last epoch is not selected
    assert r["t"] != r["last"]["t"]                    # the selected epoch's target accuracy, not the last one's
    with tempfile.TemporaryDirectory() as t:            # a checkpoint holds what resuming needs: no second model
        c = Trainer(_net(), _Data(), TrainConfig(epochs=2, batch_size=12), ckpt=Path(t)/"c.pt", progress=False)
        c.fit(stop_after=1); st = torch.load(Path(t)/"c.pt", weights_only=True)
        test_eq(sorted(st), ['best', 'best_test', 'epoch', 'g', 'history', 'hooks', 'model', 'opt', 'rng', 'sched', 'step'])
        test_eq([p.name for p in Path(t).iterdir()], ["c.pt"])                   # no temporary file left
        c.fit(); test_eq(c.epoch, 2); test_eq(torch.load(Path(t)/"c.pt", weights_only=True)["epoch"], 1)
        one = Trainer(_net(), _Data(), TrainConfig(epochs=1, batch_size=12), ckpt=Path(t)/"one.pt", progress=False)
        one.fit(); assert not (Path(t)/"one.pt").exists()                        # a one-epoch run writes none
    test_eq(r["last"]["val"], r["history"][-1])
    bn = Trainer(_net(), _Data(), TrainConfig(epochs=1, batch_size=12, freeze_bn=True), progress=False)
    m0 = bn.model[1].running_mean.clone(); bn.fit(); test_eq(bn.model[1].running_mean, m0)  # frozen statistics
    bn2 = Trainer(_net(), _Data(), TrainConfig(epochs=1, batch_size=12), progress=False); bn2.fit()
    assert not torch.allclose(bn2.model[1].running_mean, m0)
    test_fail(lambda: Trainer(_net(), _Data(), TrainConfig(schedule="step")), contains="'cosine' or 'onecycle'")
    import json
    from dataclasses import asdict, replace
    mc = DGModelConfig(epochs=3, arch="resnet50"); tc = mc.train_config(2)  # the loop's part of a model config
    test_eq(type(tc), TrainConfig); test_eq((tc.epochs, tc.n_domain, tc.schedule), (3, 2, "onecycle"))
    js = lambda c: json.loads(json.dumps(asdict(c)))
    old = js(mc); del old["val_frac"]  # a job saved before `val_frac` existed
    test_eq(config_matches(old, js(mc), DGModelConfig()), True)
    test_eq(config_matches(old, js(replace(mc, val_frac=0.3)), DGModelConfig()), False)
    test_eq(config_matches(js(mc), js(replace(mc, lr=0.1)), DGModelConfig()), False)
