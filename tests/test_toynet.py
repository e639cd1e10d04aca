"""Tests exported from nbs/06_toynet.ipynb by `dg-export-tests`. DO NOT EDIT: edit the notebook."""

from dg_literate.toynet import *

from fastcore.test import *
from dg_literate.core import known_failure, shipped_weights
from fastcore.xtras import modified_env
import dataclasses, json, tempfile, torch
from pathlib import Path
from dg_literate.toyworld import web_batch


def test_toynet_resume():
    cfg = dataclasses.replace(TOYNET_TINY, steps=4, batch_size=8)
    x = web_batch(0, 8)[0]
    test_eq(flip_crop(x, torch.Generator().manual_seed(1)), flip_crop(x, torch.Generator().manual_seed(1)))
    test_eq(web_labels(dict(cls=torch.tensor([0, 6]), variant=torch.tensor([1, 0]))), torch.tensor([1, 12]))
    with tempfile.TemporaryDirectory() as t:
        full, _ = train_toynet(cfg, progress=False)
        train_toynet(cfg, ckpt=Path(t)/"ck.pt", progress=False, stop_at=2, ckpt_every=2)
        resumed, log = train_toynet(cfg, ckpt=Path(t)/"ck.pt", progress=False)
        test_eq(len(log["loss"]), 4)
        for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
            test_close(a.float(), b.float(), eps=1e-5)


def test_backbone_loading_paths():
    import torchvision
    with tempfile.TemporaryDirectory() as t, modified_env(DG_LITERATE_WEIGHTS=t):
        test_fail(lambda: load_backbone_state("toynet"), contains="dg-reproduce build toynet")
        folder = build_toynet(
            dataclasses.replace(TOYNET_TINY, name="toynet", steps=2, batch_size=4), progress=False
        )
        assert (folder/"resnet18.safetensors").is_file() and (folder/"MANIFEST.json").is_file()
        m = backbone("resnet18", "toynet", num_classes=7)
        sd = load_backbone_state("toynet")
        test_eq(m.layer1[0].conv1.weight.detach(), sd["layer1.0.conv1.weight"])
        test_eq(m.fc.out_features, 7)
        # a real checkpoint's layout
        real = torchvision.models.resnet18(); torch.save(real.state_dict(), Path(t)/"resnet18-f37072fd.pth")
        m2 = backbone("resnet18", str(Path(t)/"resnet18-f37072fd.pth"), num_classes=7)
        test_eq(m2.conv1.weight.detach(), real.conv1.weight.detach())
        test_fail(
            lambda: backbone("resnet50", str(Path(t) / "resnet18-f37072fd.pth")),
            contains="not a torchvision resnet50",
        )
        test_fail(lambda: backbone("resnet18", "/no/such/file.pth"), contains="not found")


def test_shipped_toynet_beats_scratch_small():
    from dg_literate.core import ShippedWeightsError
    from dg_literate.toyworld import ToyWorld
    try: shipped_weights("toynet")
    except ShippedWeightsError as e: raise AssertionError(f"toynet must ship with the package: {e}")
    w = ToyWorld(84, seed=0)
    pre = erm_resnet(w, "cartoon", "toynet", epochs=3, batch_size=32, lr=0.01, progress=False)
    scratch = erm_resnet(w, "cartoon", "", epochs=3, batch_size=32, progress=False)
    test_eq(pre["freeze_bn"], True); test_eq(scratch["freeze_bn"], False)
    assert pre["val"] >= scratch["val"] + 20, (pre, scratch)  # far better where it has seen the domains
    assert pre["test"] >= 45 and pre["test"] >= scratch["test"] + 10, (pre, scratch) # and on the held-out domain
