"""Tests exported from nbs/04_toyldm.ipynb by `dg-export-tests`. DO NOT EDIT: edit the notebook."""

from dg_literate.toyldm import *

from fastcore.test import *
import torch


def test_toyldm_roundtrip_and_img2img():
    import tempfile, shutil
    from pathlib import Path
    ldm = load_ldm("toyldm-tiny")                                                    # built on first use, loaded with from_pretrained
    x, caps = ldm_batch(TOYLDM_TINY, 0)
    test_eq(x.shape[1:], (3, 64, 64))
    test_eq(ldm.encode(x[:4]).shape, (4, 4, 8, 8))
    out = ldm.img2img(x[:4], caps[:4], strength=0.5, steps=4)
    test_eq(out.shape, (4, 3, 64, 64)); test_eq(out.dtype, torch.uint8)
    test_eq(ldm.img2img(x[:2], caps[:2], 0.5, 4, generator=torch.Generator().manual_seed(1)), ldm.img2img(x[:2], caps[:2], 0.5, 4, generator=torch.Generator().manual_seed(1)))
    test_eq(ldm.img2img(None, caps[:2], steps=3).shape, (2, 3, 64, 64))             # text-to-image
    with tempfile.TemporaryDirectory() as t:                                        # a copied folder loads by path
        shutil.copytree(build_toyldm(TOYLDM_TINY), Path(t)/"m"); test_eq(load_ldm(str(Path(t)/"m")).encode(x[:1]).shape, (1, 4, 8, 8))
        (Path(t)/"empty").mkdir(); test_fail(lambda: load_ldm(str(Path(t)/"empty")), contains="neither a toyldm folder")
