"""Tests exported from nbs/02_data.ipynb by `dg-export-tests`. DO NOT EDIT: edit the notebook."""

from dg_literate.data import *

from fastcore.test import *
import os, tempfile, zipfile, hashlib, threading, functools, http.server
from pathlib import Path
import numpy as np, torch
from PIL import Image
from dg_literate.core import skip
from dg_literate.data import _classnames

def make_tiny_domainbed(root, name="Tiny", domains=("photo", "sketch"), classes=("cat", "dog"), n=3):
    "Write a tiny DomainBed-layout dataset of random PNGs: root/name/domain/class/i.png."
    rng = np.random.default_rng(0)
    for d in domains:
        for c in classes:
            p = Path(root)/name/d/c; p.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(p / f"{i}.png")
    return Path(root)/name


def test_download_and_verify_local_server():
    with tempfile.TemporaryDirectory() as t:
        t = Path(t); src = make_tiny_domainbed(t/"src", name="tiny_extracted")
        (t/"serve").mkdir()
        with zipfile.ZipFile(t/"serve"/"tiny.zip", "w") as z:
            for p in sorted(src.rglob("*.png")): z.write(p, p.relative_to(t/"src"))
        good = hashlib.md5((t/"serve"/"tiny.zip").read_bytes()).hexdigest()
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(t/"serve"))
        handler.log_message = lambda *a: None
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{srv.server_address[1]}/tiny.zip"
        try:
            test_fail(lambda: download_and_verify(url, t/"bad", md5="0"*32), contains="checksum mismatch")
            assert not any((t/"bad").iterdir())                              # nothing left behind
            spec = DatasetSpec(
                "Tiny",
                "Tiny",
                ("photo", "sketch"),
                ("cat", "dog"),
                2,
                (Source(url, "tiny.zip", md5=good, extracted="tiny_extracted"),),
                counts={"photo": 6, "sketch": 6},
            )
            out = prepare_dataset(spec, t/"data")
            test_eq(out, t/"data"/"Tiny"); test_eq(len(list(out.rglob("*.png"))), 12)
            test_fail(
                lambda: check_counts(DatasetSpec("Tiny", "Tiny", ("photo",), None, 2, counts={"photo": 7}), out),
                contains="expected 7",
            )
        finally:
            srv.shutdown()


def test_folder_dataset_and_errors():
    import shutil
    with tempfile.TemporaryDirectory() as t:
        root = make_tiny_domainbed(t)
        ds = get_dataset(str(root)); test_eq(ds.domains, ["photo", "sketch"]); test_eq(ds.classes, ["cat", "dog"])
        test_eq(len(ds.items["photo"]), 6); test_eq(ds.labels("photo").tolist(), [0]*3 + [1]*3)
        x, y, d = ds.subset("sketch")[4]; test_eq((x.size, x.mode, y, d), ((8, 8), "RGB", 1, 1))
        test_fail(lambda: ds.subset("cartoon"), contains="no domain 'cartoon'")
        test_fail(lambda: FolderDomainDataset(Path(t)/"nope"), contains="does not exist")
        test_fail(lambda: FolderDomainDataset(root, domains=["photo", "art"]), contains="domain folder")
        for p in (root/"sketch"/"dog").iterdir(): p.unlink()
        test_fail(lambda: FolderDomainDataset(root), contains="has no images")
        shutil.rmtree(root/"sketch"/"dog")
        test_fail(lambda: FolderDomainDataset(root), contains="class folder")
        test_fail(lambda: get_dataset("PACS", root=t), contains="prepare_dataset('PACS'")
        test_fail(lambda: get_dataset("NoSuchSet"), contains="unknown dataset")


def test_folder_dataset_content_key_and_bad_images():
    import shutil, time
    with tempfile.TemporaryDirectory() as t:
        root = make_tiny_domainbed(t)
        for junk in ("._0.png", ".DS_Store", "Thumbs.db"): (root/"photo"/"cat"/junk).write_bytes(b"\0\5junk")
        (root/"photo"/".hidden").mkdir(); (root/"sketch"/".AppleDouble").mkdir()
        ds = FolderDomainDataset(root); test_eq(ds.domains, ["photo", "sketch"]); test_eq(len(ds.items["photo"]), 6)
        key, fp = ds.key, ds.fingerprint("photo")
        test_eq(FolderDomainDataset(root).key, key)                              # same files: same key
        (root/"photo"/"cat"/"0.png").unlink()
        assert FolderDomainDataset(root).key != key and FolderDomainDataset(root).fingerprint("sketch") == ds.fingerprint("sketch")
        Image.new("RGB", (8, 8)).save(root/"photo"/"cat"/"0.png")               # replaced: another key
        assert FolderDomainDataset(root).fingerprint("photo") not in (fp, "")
        good = root/"sketch"/"dog"/"0.png"; good.write_bytes(good.read_bytes()[:40])   # truncated
        ds = FolderDomainDataset(root); i = [p for p, _ in ds.items["sketch"]].index(good)
        test_fail(lambda: ds.image("sketch", i), contains=f"cannot read image {good}")
        test_fail(lambda: ds.image("sketch", i), contains="to skip it, delete it or move it out")


def test_imagenet_variants_layout():
    cn = _classnames()
    test_eq(len(class_names("OfficeHome")), 65)
    test_eq(len(class_names("DomainNet")), 345)
    test_eq(class_names("VLCS")[0], "bird")
    test_eq(len(cn["ImageNet"]), 1000)
    test_eq(len(imagenet_class_indices("ImageNet-A")), 200)
    test_eq(len(imagenet_class_indices("ImageNet-R")), 200)
    test_eq(cn["ImageNet"][0], {"wnid": "n01440764", "name": "tench"})
    with tempfile.TemporaryDirectory() as t:
        wn = [c["wnid"] for c in cn["ImageNet"]]
        for d, cls in (
            ("imagenet-a", imagenet_class_indices("ImageNet-A")),
            ("imagenetv2-matched-frequency-format-val", range(1000)),
        ):
            for i in cls: (Path(t)/d/(str(i) if d.startswith("imagenetv2") else wn[i])).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(Path(t) / "imagenet-a" / wn[6] / "x.jpg")
        Image.new("RGB", (8, 8)).save(Path(t) / "imagenetv2-matched-frequency-format-val" / "999" / "y.jpg")
        ds = get_dataset("ImageNetOOD", root=t, domains=["ImageNet-V2", "ImageNet-A"])
        test_eq(ds.labels("ImageNet-A").tolist(), [6]); test_eq(ds.labels("ImageNet-V2").tolist(), [999])
        test_eq(len(ds.classes), 1000)
        test_eq(len(ds.classes_of("ImageNet-A")), 200)
        test_eq(len(ds.classes_of("ImageNet-V2")), 1000)
        test_fail(
            lambda: get_dataset("ImageNetOOD", root=t, domains=["ImageNet-R"]),
            contains="imagenet-r does not exist",
        )


def test_dry_run_datasets():
    from fastcore.xtras import modified_env
    with modified_env(DG_LITERATE_DRY_RUN="1"), tempfile.TemporaryDirectory() as t:
        dn = get_dataset("DomainNet", root=t)  # absent: a stand-in with real names
        test_eq(dn.domains, list(SPECS["DomainNet"].domains)); test_eq(len(dn.classes), DRY_RUN_CLASSES)
        assert set(dn.classes) <= set(class_names("DomainNet"))
        test_eq(len(dn.items["real"]), DRY_RUN_CLASSES * DRY_RUN_PER_CLASS)
        test_eq(dn.subset("sketch")[0][0].size, (256, 256)); test_eq(dn.image("real", 3), dn.image("real", 3))
        inet = get_dataset("ImageNetOOD", root=t, domains=["ImageNet", "ImageNet-A"])
        test_eq(len(inet.classes), DRY_RUN_CLASSES)
        assert set(inet.classes_of("ImageNet-A")) <= set(range(DRY_RUN_CLASSES))
        root = make_tiny_domainbed(t, classes=("cat", "dog"), n=3)  # present: the real images, cut down
        tiny = get_dataset(str(root)); test_eq(len(tiny.items["photo"]), 2 * DRY_RUN_PER_CLASS)
        test_eq(len(get_dataset(str(root), cut=False).items["photo"]), 6)  # a test can ask for the whole dataset
        test_eq(tiny.items["photo"][0][0], root / "photo" / "cat" / "0.png")
        test_eq(tiny.image("photo", 0).size, (8, 8))
        test_eq(get_dataset("toyworld", n_per_domain=7).name, "toyworld")       # generated datasets are not cut
        test_fail(lambda: get_dataset("NoSuchSet"), contains="unknown dataset")


def test_dataset_domains_without_loading():
    with tempfile.TemporaryDirectory() as t:
        root = make_tiny_domainbed(t); (root/".Trash").mkdir()
        test_eq(dataset_domains(str(root)), ["photo", "sketch"])
        test_eq(dataset_domains("toyworld")[:4], ["photo", "art_painting", "cartoon", "sketch"])
        test_eq(dataset_domains("PACS", root=t, must_exist=False), ["art_painting", "cartoon", "photo", "sketch"])
        test_fail(lambda: dataset_domains("PACS", root=t), contains="PACS not found")
        test_fail(lambda: dataset_domains("NoSuchSet"), contains="unknown dataset")
        test_eq(dataset_domains("ImageNetOOD")[0], "ImageNet")


def test_loo_split_properties():
    with tempfile.TemporaryDirectory() as t:
        ds = get_dataset(str(make_tiny_domainbed(t, domains=("a", "b", "c"), n=5)))
        s = loo_split(ds, "c", seed=1)
        test_eq(s.sources, ["a", "b"]); test_eq((len(s.train), len(s.val), len(s.test)), (16, 4, 10))
        for sub_tr, sub_va in zip(s.train.datasets, s.val.datasets):
            assert not set(sub_tr.indices) & set(sub_va.indices)
            test_eq(sorted(sub_tr.indices + sub_va.indices), list(range(10)))
        test_eq([x.indices for x in loo_split(ds, "c", seed=1).val.datasets], [x.indices for x in s.val.datasets])
        assert [x.indices for x in loo_split(ds, "c", seed=2).val.datasets] != [x.indices for x in s.val.datasets]
        test_eq({d for *_, d in s.test}, {2})
        test_fail(lambda: loo_split(ds, "z"), contains="no domain")
        test_eq(s.protocol, "seeded")
        test_fail(lambda: loo_split(ds, "c", protocol="official"), contains="no official split")
        (ds.folder/"splits").mkdir()  # PACS's official split files, Dassl's format
        for d in ("a", "b"):
            names = [p.relative_to(ds.folder).as_posix() + f" {y + 1}" for p, y in ds.items[d]]
            (ds.folder/"splits"/f"{d}_train_kfold.txt").write_text("\n".join(names[:7]) + "\n")
            (ds.folder/"splits"/f"{d}_crossval_kfold.txt").write_text("\n".join(names[7:]) + "\n")
        ds2 = get_dataset(str(ds.folder)); test_eq(ds2.domains, ["a", "b", "c"])   # splits/ is not a domain
        o = loo_split(ds2, "c", seed=1)
        test_eq(o.protocol, "official"); test_eq([x.indices for x in o.val.datasets], [[7, 8, 9]] * 2)
        # the seed does not move it
        test_eq([x.indices for x in loo_split(ds2, "c", seed=2).train.datasets], [list(range(7))] * 2)
        test_eq(loo_split(ds2, "c", protocol="seeded").protocol, "seeded")
        # a class-1 image listed as class 2
        wrong = ds2.items["a"][0][0].relative_to(ds.folder).as_posix() + " 2\n"
        (ds.folder/"splits"/"a_crossval_kfold.txt").write_text(wrong)
        test_fail(lambda: loo_split(get_dataset(str(ds.folder)), "c"), contains="has label 2")


def test_pacs_counts():
    root = find_data_root("PACS")
    if root is None: skip("PACS not found in " + ", ".join(map(str, data_roots())) + ": set DG_LITERATE_DATA")
    else:
        pacs = get_dataset("PACS", root)
        test_eq(
            {d: len(pacs.items[d]) for d in pacs.domains},
            {"art_painting": 2048, "cartoon": 2344, "photo": 1670, "sketch": 3929},
        )
        test_eq(pacs.classes, ["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"])
        check_counts(SPECS["PACS"], root/"PACS")
        s = loo_split(pacs, "sketch", seed=0)
        test_eq(len(s.train) + len(s.val), 2048 + 2344 + 1670); test_eq(len(s.test), 3929)
        test_close(len(s.val) / (len(s.train) + len(s.val)), 0.2, eps=1e-3)
        img, y, d = s.test[0]; test_eq((img.mode, d), ("RGB", 3))            # sketch PNGs come back as RGB
        print(pacs)
