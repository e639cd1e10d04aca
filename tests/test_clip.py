"""Tests exported from nbs/01_clip.ipynb by `dg-export-tests`. DO NOT EDIT: edit the notebook."""

from dg_literate.clip import *

from fastcore.test import *
from fastcore.xtras import modified_env
import os, tempfile, json
from pathlib import Path
import torch, torch.nn.functional as F, open_clip

# a tiny open_clip architecture for tests: same code path as ViT-B-16, seconds to build
TINY_CFG = dict(embed_dim=32, vision_cfg=dict(image_size=32, layers=2, width=64, patch_size=8),
                text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=2))
def tiny_clip(seed=0):
    torch.manual_seed(seed); return open_clip.CLIP(**TINY_CFG).eval()

def encode_text_literal(model, tokens, placeholder=None, s=None):
    "Reference: one prompt at a time, full 77-token context, per-position replacement of the placeholder."
    outs = []
    for t in tokens:                                          # t: (L,)
        x = model.token_embedding(t)                          # E[t]: (L, D)
        if placeholder is not None:
            x = torch.stack([s if tok == placeholder else x[l] for l, tok in enumerate(t)])
        x = x + model.positional_embedding                    # + P
        x = model.transformer(x[None], attn_mask=model.attn_mask)[0]
        x = model.ln_final(x)[t.argmax()]                     # read the end token l*
        outs.append(x @ model.text_projection)
    return torch.stack(outs)


def test_conv_stem_folds_and_loads():
    from fastcore.xtras import modified_env
    import open_clip
    torch.manual_seed(0)
    s = ConvStem([8, 16], 32, bn=True); x = torch.randn(6, 3, 16, 16)
    for _ in range(3): s(torch.randn(8, 3, 16, 16))                                # running statistics move
    s.eval(); test_eq(s(x).shape, (6, 32, 4, 4)); test_close(s.folded()(x), s(x), eps=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in s.folded().modules())
    cfg = dict(embed_dim=16, vision_cfg=dict(image_size=16, patch_size=4, width=32, layers=1, head_width=16),
               text_cfg=dict(context_length=77, vocab_size=49408, width=16, heads=2, layers=1))
    with tempfile.TemporaryDirectory() as t:
        m = open_clip.CLIP(**cfg); m.visual.conv1 = s.folded()
        save_local_dir(m, Path(t), cfg, dict(size=16, mean=(0.5,) * 3, std=(0.5,) * 3))
        j = json.loads((Path(t)/"open_clip_config.json").read_text()); j["dg_literate"] = {"conv_stem": [8, 16]}
        (Path(t)/"open_clip_config.json").write_text(json.dumps(j))
        c = load_clip(f"local-dir:{t}", device="cpu")
        assert isinstance(c.model.visual.conv1, ConvStem)
        with torch.no_grad(): test_close(c.model.encode_image(x), m.eval().encode_image(x), eps=1e-5)


def test_load_clip_roundtrips():
    m = tiny_clip(0); img, txt = torch.randn(2, 3, 32, 32), open_clip.tokenize(["a photo of a dog", "a cat"])
    with torch.no_grad(): ref_i, ref_t = m.encode_image(img), m.encode_text(txt)
    with tempfile.TemporaryDirectory() as t:
        d = save_local_dir(m, Path(t)/"tiny", TINY_CFG, {"mean": [0.5]*3, "std": [0.5]*3})
        c = load_clip(f"local-dir:{d}", device="cpu")
        with torch.no_grad():
            test_close(c.model.encode_image(img), ref_i, eps=1e-6)
            test_close(c.model.encode_text(txt), ref_t, eps=1e-6)
        test_eq(c.tokenizer(["a cat"]).shape, (1, 77)); assert c.key.startswith("local-dir:")
        # a registered architecture + a checkpoint file
        register_model_config("dg-tiny-test", TINY_CFG)
        c2 = load_clip("dg-tiny-test", pretrained=str(d/"open_clip_pytorch_model.bin"), device="cpu")
        with torch.no_grad(): test_close(c2.model.encode_text(txt), ref_t, eps=1e-6)
        # a project-built model through the local-model registry
        register_local_model("dg-tiny-built", lambda: d)
        with torch.no_grad():
            test_close(load_clip("dg-tiny-built", device="cpu").model.encode_image(img), ref_i, eps=1e-6)
        test_fail(lambda: load_clip("dg-tiny-built", pretrained="openai"), contains="takes no `pretrained`")
        test_fail(lambda: load_clip(f"local-dir:{t}"), contains="not an open_clip local-dir folder")
    test_fail(lambda: load_clip("ViT-B-17"), contains="close matches")
    test_fail(lambda: load_clip("RN50", pretrained="no-such-tag"), contains="tags:")
    test_fail(lambda: load_clip("RN50", pretrained="/no/such/file.bin"), contains="checkpoint file not found")


def test_load_clip_errors_name_the_cause():
    with tempfile.TemporaryDirectory() as t:
        register_model_config("dg-tiny-test", TINY_CFG)
        bad = Path(t)/"corrupt.bin"; bad.write_bytes(b"PK\x03\x04 half a download")
        test_fail(
            lambda: load_clip("dg-tiny-test", pretrained=str(bad), device="cpu"),
            contains="corrupt.bin could not be read as a checkpoint",
        )
        other = open_clip.CLIP(**{**TINY_CFG, "embed_dim": 48})
        torch.save(other.state_dict(), Path(t) / "other.bin")
        test_fail(
            lambda: load_clip("dg-tiny-test", pretrained=str(Path(t) / "other.bin"), device="cpu"),
            contains="is not a checkpoint of open_clip 'dg-tiny-test'",
        )
        if not torch.cuda.is_available():
            torch.save(tiny_clip(0).state_dict(), Path(t)/"ok.bin")  # a valid file: the error is about the device
            test_fail(
                lambda: load_clip("dg-tiny-test", pretrained=str(Path(t) / "ok.bin"), device="cuda"),
                contains="no usable CUDA device",
            )


def test_missing_weights_fail_fast_with_instructions():
    import time
    with tempfile.TemporaryDirectory() as empty_cache, modified_env(HF_HUB_OFFLINE="1"):
        t0 = time.time()
        test_fail(lambda: load_clip("RN50", pretrained="openai", cache_dir=empty_cache, device="cpu"),
                  contains="pretrained='/path/to/open_clip_pytorch_model.bin'")
        print(f"failed after {time.time()-t0:.1f}s (model construction included)")


def test_encode_text_equals_open_clip():
    m, tok = tiny_clip(1), open_clip.get_tokenizer("ViT-B-16")
    tokens = tok(["a * style of a dog", "a photo of a * with a long tail and big ears", "*"])
    star = token_id(tok, "*")
    with torch.no_grad():
        ref = m.encode_text(tokens)
        test_close(encode_text(m, tokens, truncate=False), ref, eps=1e-5)
        test_close(
            encode_text(m, tokens, inject={star: m.token_embedding.weight[star]}, truncate=False), ref, eps=1e-5
        )
        test_close(encode_text(m, tokens), ref, eps=1e-4)                     # truncated context, same result
        s = torch.randn(64) * 0.02                                            # a learned pseudo-word
        test_close(encode_text(m, tokens, inject={star: s}), encode_text_literal(m, tokens, star, s), eps=1e-4)
        # injection changes the feature
        assert (encode_text(m, tokens, inject={star: s}) - ref).abs().max() > 1e-3
    test_fail(lambda: token_id(tok, "giraffe-like"), contains="not one")


def test_inject_gradients_and_shapes():
    m, tok = tiny_clip(2), open_clip.get_tokenizer("ViT-B-16")
    for p in m.parameters(): p.requires_grad_(False)
    star = token_id(tok, "*")
    tokens = tok(["a * style of a dog", "a * style of a cat"])
    s = torch.zeros(2, 64, requires_grad=True)                             # one vector per prompt: (B, D)
    encode_text(m, tokens, inject={star: s}).sum().backward()
    assert s.grad is not None and (s.grad.abs().sum(1) > 0).all()
    noise = tok(["* * a dog", "* * a cat"])
    v = torch.randn(2, 2, 64)                                              # two vectors per prompt: (B, n, D)
    with torch.no_grad():
        out = encode_text(m, noise, inject={star: v})
        lit = torch.stack(
            [
                encode_text(
                    m, noise[i : i + 1], inject=lambda x, t, i=i: torch.cat([x[:, :1], v[i][None], x[:, 3:]], 1)
                )[0]
                for i in range(2)
            ]
        )
    test_close(out, lit, eps=1e-5)                                        # occurrences filled in order
    test_fail(
        lambda: encode_text(m, tok(["a dog", "a * cat"]), inject={star: torch.zeros(2, 64)}), contains="exactly 1"
    )


def test_zero_shot_and_cache():
    import os
    m, tok = tiny_clip(3), open_clip.get_tokenizer("ViT-B-16")
    W = zero_shot_classifier(m, tok, ["dog", "cat"], ["a photo of a {}.", "a {}."])
    test_eq(W.shape, (2, 32)); test_close(W.norm(dim=-1), torch.ones(2), eps=1e-5)
    with torch.no_grad():
        e = F.normalize(m.encode_text(tok(["a photo of a dog.", "a dog."])), dim=-1).mean(0)
    test_close(W[0], F.normalize(e, dim=0), eps=1e-5)
    class Toy(torch.utils.data.Dataset):
        cache_key = "toy-images-v1"
        def __len__(self): return 5
        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            return torch.rand(3, 32, 32, generator=g), i % 2


    with tempfile.TemporaryDirectory() as t, modified_env(DG_LITERATE_CACHE=t):
        clip = LoadedCLIP(m, None, tok, "tiny|seed3")
        f1, y1 = image_features(clip, Toy(), batch_size=2, progress=False)
        test_eq(f1.shape, (5, 32)); test_eq(y1.tolist(), [0, 1, 0, 1, 0])
        test_eq(len(list(Path(t, "features").glob("*.pt"))), 1)
        calls = []
        f2, _ = cached({"model": clip.key, "data": Toy.cache_key, "normalize": True}, lambda: calls.append(1))
        test_eq(calls, []); test_close(f1, f2)                         # served from disk
