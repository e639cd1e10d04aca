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
    test_eq(ldm.encode(x[:4]).shape, (4, 8, 8, 8))
    test_eq(ldm.img2img(x[:2, :, ::2, ::2], caps[:2], 0.5, 3).shape, (2, 3, 32, 32))   # any image size: resized to 64 px and back
    out = ldm.img2img(x[:4], caps[:4], strength=0.5, steps=4)
    test_eq(out.shape, (4, 3, 64, 64)); test_eq(out.dtype, torch.uint8)
    test_eq(ldm.img2img(x[:2], caps[:2], 0.5, 4, generator=torch.Generator().manual_seed(1)), ldm.img2img(x[:2], caps[:2], 0.5, 4, generator=torch.Generator().manual_seed(1)))
    test_eq(ldm.img2img(None, caps[:2], steps=3).shape, (2, 3, 64, 64))             # text-to-image
    with tempfile.TemporaryDirectory() as t:                                        # a copied folder loads by path
        shutil.copytree(build_toyldm(TOYLDM_TINY), Path(t)/"m"); test_eq(load_ldm(str(Path(t)/"m")).encode(x[:1]).shape, (1, 8, 8, 8))
        (Path(t)/"empty").mkdir(); test_fail(lambda: load_ldm(str(Path(t)/"empty")), contains="neither a toyldm folder")


def test_stable_diffusion_path_on_a_tiny_folder():
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as t:                                        # the real loading code, on a tiny SD folder the test makes
        sd = load_ldm(str(tiny_sd_folder(Path(t)/"sd")))
        test_eq(type(sd).__name__, "SDImg2Img"); test_eq(sd.resolution, 32)
        x = torch.randint(0, 256, (2, 3, 48, 48), dtype=torch.uint8)
        out = sd.img2img(x, ["a circle", "a star"], strength=0.5, steps=4, guidance=3.0, generator=torch.Generator().manual_seed(0))
        test_eq(out.shape, (2, 3, 48, 48)); test_eq(out.dtype, torch.uint8)
        z = sd.encode(x); test_eq(z.shape, (2, 4, 16, 16)); test_eq(sd.decode(z, 48).shape, (2, 3, 48, 48))
        test_eq(sd.encode_text(["a circle"]).shape, (1, 16, 32))
        test_eq(any(p.requires_grad for p in sd.unet.parameters()), False)
