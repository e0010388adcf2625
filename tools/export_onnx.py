#!/usr/bin/env python3
"""Export a CLIP model to a clip-rs model directory (format ``clip-rs/1``).

The directory holds three files, written in this order (so a crash leaves no
config behind):

``visual.onnx``
    input ``pixel_values`` float32 (float16 with ``--fp16``) ``[batch, 3, S, S]``
    -> output ``image_embeds`` ``[batch, D]`` = ``model.encode_image(x)``
    (unnormalised projection).
``textual.onnx``
    input ``input_ids`` int64 ``[batch, seq]`` (``seq`` dynamic, ``<= 77``)
    -> output ``text_embeds`` ``[batch, D]`` = ``model.encode_text(ids)``.
    The text tower is causal and pools at the EOT token (the highest id), so
    feeding only the first ``max_eot + 1`` columns gives the same result as
    feeding all 77; this is checked numerically after every export.

Both towers pool one row (the class token, the EOT token) after their last
residual block, so for OpenAI-layout models the exported last block computes
only that row's query, attention output and MLP (keys and values still from
every position): the same arithmetic for the rows that reach the output, ~7 %
fewer FLOPs per 12-layer tower (``exporter.pooled_last_block`` in the config
says which towers have it; ResNet image towers, open_clip's and transformers'
blocks are exported whole). Those OpenAI blocks are also written out on
batch-major 2-D rows, which exports fewer Transposes and bias Adds than
``nn.MultiheadAttention`` on the reference's sequence-first layout. Verification
compares against the reference's own ``encode_image`` / ``encode_text``, never
against the wrapper.
``clip_config.json``
    architecture, embed dim, image size, mean/std, context length, vocab size,
    the raw learned ``logit_scale`` (ln of the multiplier), dtypes, source and
    exporter versions.

Sources::

    python3 tools/export_onnx.py --from openai --checkpoint ViT-B-32.pt --out DIR
    python3 tools/export_onnx.py --from open_clip --model ViT-B-32 --checkpoint ckpt.bin --out DIR
    python3 tools/export_onnx.py --from hf --checkpoint path/to/hf_clip_dir --out DIR
    python3 tools/export_onnx.py --random-init --arch ViT-B/32 --seed 0 --out DIR \\
        [--save-checkpoint DIR/model.pt]

``--from openai`` reads what ``clip.load`` reads (OpenAI's TorchScript archive
or a plain state dict), builds the model with ``clip.model.build_model`` (the
architecture is inferred from the weights) and runs it in fp32 on CPU, exactly
as ``clip.load(path, device="cpu", jit=False)`` does.

``--random-init`` builds the reference ``clip.model.CLIP`` with one of the
nine OpenAI architectures' hyperparameters (its constructor calls
``initialize_parameters``) after ``torch.manual_seed(seed)``, then passes it
through ``clip.model.convert_weights`` and ``.float()``: OpenAI's released
checkpoints store those weights in fp16, and ``clip.load`` rounds them so;
doing the same here makes ``clip.load(--save-checkpoint file)`` reproduce the
exported model bit for bit.

After export the ONNX models are run with ONNX Runtime against PyTorch on
random inputs; the script exits non-zero when the cosine similarity falls
below 0.99999 (fp32) / 0.999 (fp16) / 0.99 (int8).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

FORMAT = "clip-rs/1"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
VISUAL_FILE = "visual.onnx"
TEXTUAL_FILE = "textual.onnx"
CONFIG_FILE = "clip_config.json"

# Hyperparameters of the nine OpenAI architectures, in the argument order of
# clip.model.CLIP(embed_dim, image_resolution, vision_layers, vision_width,
# vision_patch_size, context_length, vocab_size, transformer_width,
# transformer_heads, transformer_layers).
ARCHS: dict[str, dict[str, Any]] = {
    "RN50": dict(embed_dim=1024, image_resolution=224, vision_layers=(3, 4, 6, 3), vision_width=64,
                 vision_patch_size=None, transformer_width=512, transformer_heads=8, transformer_layers=12),
    "RN101": dict(embed_dim=512, image_resolution=224, vision_layers=(3, 4, 23, 3), vision_width=64,
                  vision_patch_size=None, transformer_width=512, transformer_heads=8, transformer_layers=12),
    "RN50x4": dict(embed_dim=640, image_resolution=288, vision_layers=(4, 6, 10, 6), vision_width=80,
                   vision_patch_size=None, transformer_width=640, transformer_heads=10, transformer_layers=12),
    "RN50x16": dict(embed_dim=768, image_resolution=384, vision_layers=(6, 8, 18, 8), vision_width=96,
                    vision_patch_size=None, transformer_width=768, transformer_heads=12, transformer_layers=12),
    "RN50x64": dict(embed_dim=1024, image_resolution=448, vision_layers=(3, 15, 36, 10), vision_width=128,
                    vision_patch_size=None, transformer_width=1024, transformer_heads=16, transformer_layers=12),
    "ViT-B/32": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
                     vision_patch_size=32, transformer_width=512, transformer_heads=8, transformer_layers=12),
    "ViT-B/16": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
                     vision_patch_size=16, transformer_width=512, transformer_heads=8, transformer_layers=12),
    "ViT-L/14": dict(embed_dim=768, image_resolution=224, vision_layers=24, vision_width=1024,
                     vision_patch_size=14, transformer_width=768, transformer_heads=12, transformer_layers=12),
    "ViT-L/14@336px": dict(embed_dim=768, image_resolution=336, vision_layers=24, vision_width=1024,
                           vision_patch_size=14, transformer_width=768, transformer_heads=12, transformer_layers=12),
}
for _hp in ARCHS.values():
    _hp.update(context_length=77, vocab_size=49408)

COSINE_MIN = {"float32": 0.99999, "float16": 0.999, "int8": 0.99}


class ExportError(RuntimeError):
    """A failure that names the file or the step concerned."""


def _import_clip():
    """Import the reference ``clip`` package (clip-anytorch), quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import clip  # type: ignore
        import clip.model  # type: ignore
    return clip


# --------------------------------------------------------------------------
# Reference models
# --------------------------------------------------------------------------

def clip_hyperparameters(model: nn.Module) -> dict[str, Any]:
    """Hyperparameters of a reference ``clip.model.CLIP``, as build_model infers them."""
    sd = model.state_dict()
    vit = "visual.proj" in sd
    if vit:
        width = sd["visual.conv1.weight"].shape[0]
        layers = len([k for k in sd if k.startswith("visual.") and k.endswith(".attn.in_proj_weight")])
        patch = sd["visual.conv1.weight"].shape[-1]
        grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        res = patch * grid
    else:
        layers = tuple(len(set(k.split(".")[2] for k in sd if k.startswith(f"visual.layer{b}"))) for b in (1, 2, 3, 4))
        width = sd["visual.layer1.0.conv1.weight"].shape[0]
        patch = None
        res = round((sd["visual.attnpool.positional_embedding"].shape[0] - 1) ** 0.5) * 32
    tw = sd["ln_final.weight"].shape[0]
    return dict(
        embed_dim=sd["text_projection"].shape[1], image_resolution=res, vision_layers=layers, vision_width=width,
        vision_patch_size=patch, context_length=sd["positional_embedding"].shape[0],
        vocab_size=sd["token_embedding.weight"].shape[0], transformer_width=tw, transformer_heads=tw // 64,
        transformer_layers=len(set(k.split(".")[2] for k in sd if k.startswith("transformer.resblocks"))),
    )


def arch_name(hp: dict[str, Any]) -> str:
    """The OpenAI architecture name whose hyperparameters equal ``hp``, or ``"custom"``."""
    for name, ref in ARCHS.items():
        if all(_norm(hp.get(k)) == _norm(v) for k, v in ref.items()):
            return name
    return "custom"


def _norm(v: Any) -> Any:
    return tuple(v) if isinstance(v, (list, tuple)) else v


def build_clip(hp: dict[str, Any], seed: int) -> nn.Module:
    """Seeded random-init reference CLIP with hyperparameters ``hp``.

    Uses the reference constructor (which runs ``initialize_parameters``),
    then rounds the weights that OpenAI stores in fp16 (``convert_weights``)
    and returns an fp32 model in eval mode, as ``clip.load`` on CPU would give.
    """
    clip = _import_clip()
    torch.manual_seed(seed)
    model = clip.model.CLIP(
        hp["embed_dim"], hp["image_resolution"], hp["vision_layers"], hp["vision_width"], hp["vision_patch_size"],
        hp["context_length"], hp["vocab_size"], hp["transformer_width"], hp["transformer_heads"],
        hp["transformer_layers"],
    )
    clip.model.convert_weights(model)
    return model.float().eval()


def random_init_openai(arch: str, seed: int) -> nn.Module:
    """Random-init reference model for one of the nine OpenAI architecture names."""
    if arch not in ARCHS:
        raise ExportError(f"unknown --arch {arch!r}; choose one of {', '.join(ARCHS)}")
    return build_clip(ARCHS[arch], seed)


def save_openai_checkpoint(model: nn.Module, path: Path) -> None:
    """Write ``model``'s state dict in OpenAI's layout (conv/linear/attention/projection weights fp16).

    ``clip.load(path, device="cpu", jit=False)`` reads it back to the same fp32 model.
    """
    clip = _import_clip()
    import copy

    m = copy.deepcopy(model)
    clip.model.convert_weights(m)
    sd = {k: v.detach().clone().contiguous() for k, v in m.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, str(path))


def load_openai_checkpoint(path: Path) -> nn.Module:
    """Load an OpenAI checkpoint as ``clip.load(path, device="cpu", jit=False)`` does."""
    clip = _import_clip()
    if not path.is_file():
        raise ExportError(f"{path}: checkpoint not found")
    state_dict: Optional[dict] = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state_dict = torch.jit.load(str(path), map_location="cpu").eval().state_dict()
    except RuntimeError:
        try:
            state_dict = torch.load(str(path), map_location="cpu")
        except Exception as e:  # noqa: BLE001
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExportError(f"{path}: neither a TorchScript archive nor a state dict that torch.load "
                              f"(weights_only) can read: {first}") from e
    if isinstance(state_dict, dict) and "state_dict" in state_dict and isinstance(state_dict["state_dict"], dict):
        state_dict = state_dict["state_dict"]
    if not isinstance(state_dict, dict):
        raise ExportError(f"{path}: expected a state dict, found {type(state_dict).__name__}")
    state_dict = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state_dict.items()}
    try:
        model = clip.model.build_model(dict(state_dict))
    except Exception as e:  # noqa: BLE001
        raise ExportError(f"{path}: not an OpenAI CLIP state dict ({type(e).__name__}: {e})") from e
    return model.float().eval()


# --------------------------------------------------------------------------
# Export wrappers
# --------------------------------------------------------------------------

class ImageTower(nn.Module):
    """``pixel_values -> model.encode_image(pixel_values)`` (any model: ResNets, transformers' CLIP)."""

    def __init__(self, encode: Callable[[torch.Tensor], torch.Tensor], owner: nn.Module):
        super().__init__()
        self.owner = owner
        self._encode = encode

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self._encode(pixel_values)


# OpenAI's residual blocks, written out for export. ``clip.model.ResidualAttentionBlock`` runs
# ``nn.MultiheadAttention`` on sequence-first ``[L, N, D]`` tensors; exported as is, every
# block becomes 3-D MatMuls with separate bias Adds and six Transposes (q, k and v to heads,
# and back). Below, the same arithmetic runs on batch-major 2-D rows ``[N * L, D]``: the
# projections export as Gemm with the bias fused, one Transpose splits q/k/v into heads and
# one joins them. Measured with ONNX Runtime 1.32 (2 threads, alternating, paired medians):
# ViT-B/32 image tower at batch 32 ~1.5-5 % faster, text tower 6-7 % (docs/performance.md,
# proposal 10). The exporter's verification compares with the reference's own forward.

def _check_plain_attention(attn: nn.Module) -> None:
    """The only ``nn.MultiheadAttention`` configuration :func:`_attention` reproduces (OpenAI's)."""
    plain = (
        isinstance(attn, nn.MultiheadAttention) and attn._qkv_same_embed_dim and attn.in_proj_bias is not None
        and attn.bias_k is None and attn.bias_v is None and not attn.add_zero_attn and not attn.batch_first
    )
    if not plain:
        raise ExportError("unexpected attention layer (expected clip.model's nn.MultiheadAttention with a packed "
                          "input projection and bias)")


def _attention(attn: nn.MultiheadAttention, q_rows: Optional[torch.Tensor], kv_rows: torch.Tensor, n: int,
               lq: int, lk: int, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``nn.MultiheadAttention`` (eval: no dropout) on batch-major rows; returns ``[n * lq, D]``.

    ``kv_rows`` ``[n * lk, D]`` are the normalised rows keys and values come from;
    ``q_rows`` ``[n * lq, D]`` the query rows, or None for self-attention over ``kv_rows``.
    ``bias`` is added to the ``[n, heads, lq, lk]`` scores (``-inf`` masks a key).
    """
    D = kv_rows.shape[-1]
    H = attn.num_heads
    d = D // H
    w, b = attn.in_proj_weight, attn.in_proj_bias
    if q_rows is None:
        qkv = F.linear(kv_rows, w, b).reshape(n, lk, 3, H, d).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
    else:
        q = F.linear(q_rows, w[:D], b[:D]).reshape(n, lq, H, d).permute(0, 2, 1, 3)
        kv = F.linear(kv_rows, w[D:], b[D:]).reshape(n, lk, 2, H, d).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]
    scores = (q * d ** -0.5) @ k.transpose(-1, -2)
    if bias is not None:
        scores = scores + bias
    heads = scores.softmax(-1) @ v  # [n, H, lq, d]
    return F.linear(heads.permute(0, 2, 1, 3).reshape(n * lq, D), attn.out_proj.weight, attn.out_proj.bias)


def _block_rows(b: nn.Module, x: torch.Tensor, n: int, l: int, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``clip.model.ResidualAttentionBlock`` on batch-major rows ``x`` ``[n * l, D]``."""
    x = x + _attention(b.attn, None, b.ln_1(x), n, l, l, bias)
    return x + b.mlp(b.ln_2(x))


def _pooled_block_rows(b: nn.Module, x: torch.Tensor, rows: torch.Tensor, n: int, l: int,
                       bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The last residual block evaluated only at the rows the tower pools; ``[n, D]``.

    ``x`` ``[n * l, D]`` is the block's input, ``rows`` ``[n, D]`` the one row per sequence
    that pooling reads (the class token, each text's EOT token). Keys and values still come
    from every position, so the pooled rows get exactly the reference's arithmetic:
    attention is per query row, and ``ln_1``, ``ln_2`` and the MLP are per row. What is
    skipped — the query projection, attention output, out-projection and MLP of every other
    row — cannot reach the output, because nothing after the last block mixes rows before
    pooling: ~10/12 of the last block's dense FLOPs, ~7 % of a 12-layer tower.
    """
    rows = rows + _attention(b.attn, b.ln_1(rows), b.ln_1(x), n, 1, l, bias)
    return rows + b.mlp(b.ln_2(rows))


class OpenAIVisionTower(nn.Module):
    """The reference ``VisionTransformer.forward`` on batch-major rows, last block at the class token only.

    Same operations as ``clip.model.VisionTransformer.forward`` (patch convolution, class
    token, positional embedding, ``ln_pre``, the residual blocks, ``ln_post`` at the class
    token, ``@ proj``); the blocks run through :func:`_block_rows` and the last one through
    :func:`_pooled_block_rows`, because the reference reads only row 0 of its output. The
    export is checked against the reference's own ``encode_image``.
    """

    def __init__(self, visual: nn.Module):
        super().__init__()
        for b in visual.transformer.resblocks:
            _check_plain_attention(b.attn)
        self.visual = visual

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        v = self.visual
        x = v.conv1(pixel_values.to(v.conv1.weight.dtype))
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = v.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype,
                                                          device=x.device)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)
        n, l, D = x.shape
        x = v.ln_pre(x).reshape(n * l, D)
        blocks = v.transformer.resblocks
        for b in blocks[:-1]:
            x = _block_rows(b, x, n, l)
        pooled = _pooled_block_rows(blocks[-1], x, x.reshape(n, l, D)[:, 0], n, l)
        x = v.ln_post(pooled)
        return x @ v.proj if v.proj is not None else x


def _is_openai_vit(visual: nn.Module) -> bool:
    """True for ``clip.model.VisionTransformer`` with the reference's block structure."""
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    return (
        hasattr(visual, "class_embedding") and hasattr(visual, "ln_post") and blocks is not None and len(blocks) > 0
        and all(hasattr(b, n) for b in blocks for n in ("ln_1", "attn", "ln_2", "mlp"))
        and getattr(blocks[-1], "attn_mask", None) is None
    )


class OpenAITextTower(nn.Module):
    """The reference ``encode_text`` for a dynamic sequence length ``seq <= context_length``.

    ``x = token_embedding(ids) + positional_embedding[:seq]``, causal mask
    ``[:seq, :seq]``, the reference residual blocks, ``ln_final``, pooling at
    ``ids.argmax(-1)`` (the EOT token has the highest id), ``@ text_projection``.
    Works for OpenAI's ``clip.model.CLIP`` and for open_clip's ``CLIP``. ``block_call``
    runs the blocks and returns the ``[N, D]`` rows at the EOT positions (OpenAI's:
    :func:`_openai_blocks_pooled`, which skips what pooling never reads); ``ln_final`` is
    per row, so applying it after the gather is the reference's arithmetic.
    """

    def __init__(self, model: nn.Module, blocks: nn.Module, block_call: Callable, ctx: int):
        super().__init__()
        self.token_embedding = model.token_embedding
        self.positional_embedding = model.positional_embedding
        self.blocks = blocks
        self.ln_final = model.ln_final
        self.text_projection = model.text_projection
        self._block_call = block_call
        mask = torch.full((ctx, ctx), float("-inf")).triu_(1)
        self.register_buffer("causal_mask", mask, persistent=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        seq = input_ids.shape[1]
        x = self.token_embedding(input_ids) + self.positional_embedding[:seq]
        mask = self.causal_mask[:seq, :seq]
        eot = input_ids.to(torch.int32).argmax(dim=-1)
        x = self.ln_final(self._block_call(self.blocks, x, mask, eot))
        proj = self.text_projection
        return x @ proj if isinstance(proj, torch.Tensor) else proj(x)


def _openai_blocks_pooled(blocks: nn.ModuleList, x: torch.Tensor, mask: torch.Tensor,
                          eot: torch.Tensor) -> torch.Tensor:
    """Run clip.model.ResidualAttentionBlock's with an explicit causal mask; ``[N, D]`` at the EOT rows.

    ``x`` is batch-first ``[N, L, D]``. Every block but the last runs on all rows
    (:func:`_block_rows`); the last runs at each text's EOT row only
    (:func:`_pooled_block_rows`), whose causal mask row is "keys after the EOT are masked".
    """
    n, l, D = x.shape
    x = x.reshape(n * l, D)
    for b in blocks[:-1]:
        x = _block_rows(b, x, n, l, mask)
    rows = x.reshape(n, l, D)[torch.arange(n), eot]
    after_eot = (torch.arange(l).unsqueeze(0) > eot.unsqueeze(1)).reshape(n, 1, 1, l)
    bias = torch.zeros(after_eot.shape, dtype=x.dtype).masked_fill(after_eot, float("-inf"))
    return _pooled_block_rows(blocks[-1], x, rows, n, l, bias)


def pooled_last_block(prep: "Prepared") -> dict[str, bool]:
    """Which of ``prep``'s towers evaluate their last block at the pooled row only (for
    clip_config.json's ``exporter.pooled_last_block``), read off the wrappers themselves."""
    textual = getattr(prep.textual, "_block_call", None) is _openai_blocks_pooled
    return {"visual": isinstance(prep.visual, OpenAIVisionTower), "textual": textual}


def _openai_text_tower(model: nn.Module) -> OpenAITextTower:
    """The dynamic-length text tower of a reference ``clip.model.CLIP``."""
    for b in model.transformer.resblocks:
        _check_plain_attention(b.attn)
    return OpenAITextTower(model, model.transformer.resblocks, _openai_blocks_pooled, model.context_length)


@dataclass
class Prepared:
    """A model ready to export: two towers plus the facts for clip_config.json."""

    visual: nn.Module
    textual: nn.Module
    text_reference: Callable[[torch.Tensor], torch.Tensor]  # full-length reference encode_text
    image_reference: Callable[[torch.Tensor], torch.Tensor]  # the reference encode_image
    architecture: str
    embed_dim: int
    image_size: int
    context_length: int
    vocab_size: int
    logit_scale: float
    image_mean: Sequence[float] = OPENAI_MEAN
    image_std: Sequence[float] = OPENAI_STD
    text_dynamic: bool = True
    source: dict[str, Any] = field(default_factory=dict)
    reference_model: Optional[nn.Module] = None


def prepare_openai(model: nn.Module, source: dict[str, Any]) -> Prepared:
    """Wrap a reference ``clip.model.CLIP`` for export."""
    model = model.float().eval()
    hp = clip_hyperparameters(model)
    vit = _is_openai_vit(model.visual)
    return Prepared(
        visual=OpenAIVisionTower(model.visual) if vit else ImageTower(model.encode_image, model),
        textual=_openai_text_tower(model),
        text_reference=model.encode_text,
        image_reference=model.encode_image,
        architecture=arch_name(hp),
        embed_dim=int(hp["embed_dim"]),
        image_size=int(model.visual.input_resolution),
        context_length=int(model.context_length),
        vocab_size=int(model.vocab_size),
        logit_scale=float(model.logit_scale.item()),
        source=source,
        reference_model=model,
    )


def prepare_open_clip(name: str, checkpoint: Optional[str], source: dict[str, Any]) -> Prepared:
    """Load an open_clip model (``open_clip.create_model_and_transforms``) and wrap it."""
    try:
        import open_clip  # type: ignore
    except ImportError as e:
        raise ExportError("--from open_clip needs the open-clip-torch package (pip install open-clip-torch)") from e
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise ExportError(f"{checkpoint}: checkpoint not found")
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=checkpoint, device="cpu")
    model = model.float().eval()
    size = model.visual.image_size
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    mean = tuple(getattr(model.visual, "image_mean", None) or OPENAI_MEAN)
    std = tuple(getattr(model.visual, "image_std", None) or OPENAI_STD)
    # Text tower: the standard CLIP layout (token_embedding + causal transformer +
    # argmax pooling) gets the dynamic-length wrapper; anything else is exported
    # at the fixed context length through the model's own encode_text.
    standard = (
        hasattr(model, "token_embedding") and hasattr(model, "transformer") and hasattr(model, "ln_final")
        and getattr(model, "attn_mask", None) is not None
        and getattr(model, "text_pool_type", "argmax") == "argmax"
    )
    ctx = int(getattr(model, "context_length", 77))
    vocab = int(getattr(model, "vocab_size", 49408))
    if standard:
        def run_transformer(blocks: nn.Module, x: torch.Tensor, mask: torch.Tensor,
                            eot: torch.Tensor) -> torch.Tensor:
            # open_clip's Transformer takes batch-first input and handles its own layout; its
            # blocks (layer scale, other norms) are run whole, without the pooled last block.
            x = blocks(x, attn_mask=mask)
            return x[torch.arange(x.shape[0]), eot]

        textual: nn.Module = OpenAITextTower(model, model.transformer, run_transformer, ctx)
        dynamic = True
    else:
        textual = ImageTower(model.encode_text, model)
        dynamic = False
    embed_dim = int(model.encode_image(torch.zeros(1, 3, size, size)).shape[-1])
    return Prepared(
        visual=ImageTower(model.encode_image, model),
        textual=textual,
        text_reference=model.encode_text,
        image_reference=model.encode_image,
        architecture="custom",  # open_clip's name goes to source.model (its GELU etc. may differ from OpenAI's)
        embed_dim=embed_dim,
        image_size=size,
        context_length=ctx,
        vocab_size=vocab,
        logit_scale=float(model.logit_scale.item()),
        image_mean=mean,
        image_std=std,
        text_dynamic=dynamic,
        source=source,
        reference_model=model,
    )


def prepare_hf(directory: str, source: dict[str, Any]) -> Prepared:
    """Load a Hugging Face ``CLIPModel`` directory and wrap its projection heads."""
    try:
        from transformers import CLIPModel  # type: ignore
    except ImportError as e:
        raise ExportError("--from hf needs the transformers package (pip install transformers)") from e
    d = Path(directory)
    if not (d / "config.json").is_file():
        raise ExportError(f"{d / 'config.json'}: not found (expected a Hugging Face CLIPModel directory)")
    model = CLIPModel.from_pretrained(str(d), attn_implementation="eager").float().eval()
    cfg = model.config
    mean, std = OPENAI_MEAN, OPENAI_STD
    pp = d / "preprocessor_config.json"
    if pp.is_file():
        p = json.loads(pp.read_text())
        mean = tuple(p.get("image_mean", mean))
        std = tuple(p.get("image_std", std))

    def img(x: torch.Tensor) -> torch.Tensor:
        return _tensor_of(model.get_image_features(pixel_values=x))

    def txt(ids: torch.Tensor) -> torch.Tensor:
        return _tensor_of(model.get_text_features(input_ids=ids))

    vc, tc = cfg.vision_config, cfg.text_config
    hp = dict(
        embed_dim=cfg.projection_dim, image_resolution=vc.image_size, vision_layers=vc.num_hidden_layers,
        vision_width=vc.hidden_size, vision_patch_size=vc.patch_size, context_length=tc.max_position_embeddings,
        vocab_size=tc.vocab_size, transformer_width=tc.hidden_size, transformer_heads=tc.num_attention_heads,
        transformer_layers=tc.num_hidden_layers,
    )
    return Prepared(
        visual=ImageTower(img, model),
        textual=ImageTower(txt, model),
        text_reference=txt,
        image_reference=img,
        architecture=arch_name(hp) if (vc.hidden_act == tc.hidden_act == "quick_gelu") else "custom",
        embed_dim=int(cfg.projection_dim),
        image_size=int(vc.image_size),
        context_length=int(tc.max_position_embeddings),
        vocab_size=int(tc.vocab_size),
        logit_scale=float(model.logit_scale.item()),
        image_mean=mean,
        image_std=std,
        text_dynamic=True,
        source=source,
        reference_model=model,
    )


def _tensor_of(out: Any) -> torch.Tensor:
    """transformers may return a tensor or a ModelOutput holding the projection."""
    if isinstance(out, torch.Tensor):
        return out
    for key in ("image_embeds", "text_embeds", "pooler_output"):
        v = getattr(out, key, None)
        if isinstance(v, torch.Tensor):
            return v
    raise ExportError(f"unexpected transformers output {type(out).__name__}")


# --------------------------------------------------------------------------
# ONNX export and verification
# --------------------------------------------------------------------------

def _param_bytes(m: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in m.parameters())


def export_tower(module: nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str,
                 dims: dict[int, Any], opset: int, allow_torchscript: bool = True) -> str:
    """Export one tower; a single-file ONNX model unless its weights exceed 1.9 GB.

    Uses the dynamo exporter (``torch.export``); if that fails and ``allow_torchscript``, falls back
    to the TorchScript exporter with the same dynamic axes. Returns ``"dynamo"`` or ``"torchscript"``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    big = _param_bytes(module) > 1_900_000_000
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prog = torch.onnx.export(
                module, (example,), None, dynamo=True, opset_version=opset,
                input_names=[input_name], output_names=[output_name],
                dynamic_shapes=(dict(dims),),
                optimize=True, verbose=False,
            )
        prog.save(str(path), external_data=big)
        how = "dynamo"
    except Exception as e:  # noqa: BLE001
        if not allow_torchscript:
            raise
        print(f"  dynamo export of {path.name} failed ({type(e).__name__}: {str(e)[:200]}); "
              f"trying the TorchScript exporter", flush=True)
        axes = {input_name: {i: str(getattr(d, "__name__", f"dim{i}")) for i, d in dims.items()},
                output_name: {0: "batch"}}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), str(path), dynamo=False, opset_version=opset,
                              input_names=[input_name], output_names=[output_name], dynamic_axes=axes)
        how = "torchscript"
    _rename_io(path, input_name, output_name)
    return how


def _rename_io(path: Path, input_name: str, output_name: str) -> None:
    """Make sure the graph's single input/output carry the contract names."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    g = m.graph
    changed = False
    if len(g.input) != 1 or len(g.output) != 1:
        raise ExportError(f"{path}: expected 1 input and 1 output, found {len(g.input)} and {len(g.output)}")
    for io, want in ((g.input[0], input_name), (g.output[0], output_name)):
        if io.name != want:
            old = io.name
            for node in g.node:
                node.input[:] = [want if n == old else n for n in node.input]
                node.output[:] = [want if n == old else n for n in node.output]
            io.name = want
            changed = True
    # Drop the exporter's per-node debug metadata (stack traces with local paths and line
    # numbers): it makes files differ between machines and edits of this script.
    for node in g.node:
        if len(node.metadata_props):
            del node.metadata_props[:]
            changed = True
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        if len(vi.metadata_props):
            del vi.metadata_props[:]
            changed = True
    if changed:
        onnx.save(m, str(path))


def to_fp16(path: Path) -> None:
    """Convert an fp32 ONNX model to fp16 in place (inputs and outputs float16 too)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    m = onnx.load(str(path))
    m16 = convert_float_to_float16(m, keep_io_types=False, disable_shape_infer=False)
    onnx.save(m16, str(path))


def to_int8(path: Path) -> None:
    """Dynamic int8 quantization (weights int8, activations quantized at run time), in place."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td) / "q.onnx"
        quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8)
        os.replace(tmp, path)


def ort_session(path: Path, threads: int = 0):
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def compare(ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
    """Max abs diff, that relative to max |ref|, and the minimum row cosine."""
    ref = ref.astype(np.float64)
    got = got.astype(np.float64)
    diff = float(np.abs(ref - got).max())
    scale = float(np.abs(ref).max())
    cos = np.sum(ref * got, -1) / (np.linalg.norm(ref, axis=-1) * np.linalg.norm(got, axis=-1))
    return {"max_abs_diff": diff, "rel_diff": diff / scale if scale else diff, "cosine_min": float(cos.min()),
            "max_abs_ref": scale}


def random_token_ids(batch: int, ctx: int, vocab: int, rng: np.random.Generator,
                     lengths: Optional[Sequence[int]] = None) -> np.ndarray:
    """Token id rows like clip.tokenize's: SOT, random tokens, EOT (highest id), zero padding."""
    sot, eot = vocab - 2, vocab - 1
    ids = np.zeros((batch, ctx), dtype=np.int64)
    for i in range(batch):
        n = int(lengths[i]) if lengths is not None else int(rng.integers(2, ctx + 1))
        n = max(2, min(n, ctx))
        ids[i, 0] = sot
        ids[i, 1:n - 1] = rng.integers(1, max(2, vocab - 2), n - 2)
        ids[i, n - 1] = eot
    return ids


def verify(prep: Prepared, out: Path, dtype: str, seed: int = 1234, batch: int = 3) -> dict[str, dict[str, float]]:
    """Run both ONNX models with ONNX Runtime against PyTorch on random inputs.

    Returns a dict of comparison results; keys ``image``, ``text`` (77 columns)
    and ``text_dynamic`` (only the first ``max_eot + 1`` columns fed to ONNX,
    compared with PyTorch on all 77).
    """
    rng = np.random.default_rng(seed)
    S, ctx = prep.image_size, prep.context_length
    np_dtype = np.float16 if dtype == "float16" else np.float32
    x = rng.standard_normal((batch, 3, S, S)).astype(np.float32)
    lengths = [5, ctx, 17, 2, 40][:batch] if batch <= 5 else None
    ids = random_token_ids(batch, ctx, prep.vocab_size, rng, lengths=[3, 9, 12][:batch] if batch <= 3 else lengths)
    ids_long = random_token_ids(batch, ctx, prep.vocab_size, rng, lengths=[ctx, 30, 7][:batch] if batch <= 3 else None)
    results: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        ref_img = prep.image_reference(torch.from_numpy(x)).float().numpy()
        ref_txt = prep.text_reference(torch.from_numpy(ids)).float().numpy()
        ref_txt_long = prep.text_reference(torch.from_numpy(ids_long)).float().numpy()
    vs = ort_session(out / VISUAL_FILE)
    results["image"] = compare(ref_img, vs.run(None, {"pixel_values": x.astype(np_dtype)})[0])
    del vs
    ts = ort_session(out / TEXTUAL_FILE)
    results["text"] = compare(ref_txt_long, ts.run(None, {"input_ids": ids_long})[0])
    if prep.text_dynamic:
        n = int(ids.argmax(-1).max()) + 1
        results["text_dynamic"] = compare(ref_txt, ts.run(None, {"input_ids": ids[:, :n]})[0])
        results["text_dynamic"]["seq"] = n
    else:
        results["text_dynamic"] = compare(ref_txt, ts.run(None, {"input_ids": ids})[0])
    return results


def print_verification(results: dict[str, dict[str, float]], dtype: str) -> bool:
    """Print the verification table; True when every cosine meets the threshold for ``dtype``."""
    ok = True
    thr = COSINE_MIN[dtype]
    for k, r in results.items():
        good = r["cosine_min"] >= thr
        ok &= good
        extra = f" seq={int(r['seq'])}" if "seq" in r else ""
        print(f"  {k:13s} max_abs_diff={r['max_abs_diff']:.3e} rel={r['rel_diff']:.3e} "
              f"cosine_min={r['cosine_min']:.8f} (>= {thr}) {'OK' if good else 'FAIL'}{extra}")
    return ok


def export_prepared(prep: Prepared, out: Path, opset: int = 18, fp16: bool = False, int8: bool = False,
                    check: bool = True, quiet: bool = False) -> dict[str, Any]:
    """Export ``prep`` to ``out`` (visual.onnx, textual.onnx, then clip_config.json).

    Returns the config dict; raises ExportError when verification fails.
    """
    log = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / CONFIG_FILE
    if cfg_path.exists():
        cfg_path.unlink()
    S, ctx = prep.image_size, prep.context_length
    batch = torch.export.Dim("batch", min=1, max=4096)
    t0 = time.time()
    log(f"exporting {out / VISUAL_FILE} ...")
    how_v = export_tower(prep.visual, torch.randn(2, 3, S, S), out / VISUAL_FILE, "pixel_values",
                         "image_embeds", {0: batch}, opset)
    log(f"  done in {time.time() - t0:.1f}s")
    t0 = time.time()
    log(f"exporting {out / TEXTUAL_FILE} ...")
    ids = torch.from_numpy(random_token_ids(2, ctx, prep.vocab_size, np.random.default_rng(0), lengths=[5, ctx]))
    dynamic = prep.text_dynamic
    if dynamic:
        try:
            seq = torch.export.Dim("seq", min=2, max=ctx)
            how_t = export_tower(prep.textual, ids, out / TEXTUAL_FILE, "input_ids", "text_embeds",
                                 {0: batch, 1: seq}, opset, allow_torchscript=False)
        except Exception as e:  # noqa: BLE001
            log(f"  dynamic sequence length export failed ({type(e).__name__}: {str(e)[:300]}); "
                f"falling back to a fixed length of {ctx}")
            dynamic = False
    if not dynamic:
        how_t = export_tower(prep.textual, ids, out / TEXTUAL_FILE, "input_ids", "text_embeds", {0: batch}, opset)
    prep.text_dynamic = dynamic
    log(f"  done in {time.time() - t0:.1f}s")

    dtype = "float32"
    results = None
    if check:
        log("verifying fp32 ONNX against PyTorch (onnxruntime, CPU):")
        results = verify(prep, out, "float32")
        ok = print_verification(results, "float32")
        if dynamic and results["text_dynamic"]["cosine_min"] < COSINE_MIN["float32"]:
            ok = False
        if not ok:
            raise ExportError(f"{out}: ONNX output does not match PyTorch (fp32)")
    if fp16:
        dtype = "float16"
        for f in (VISUAL_FILE, TEXTUAL_FILE):
            to_fp16(out / f)
    elif int8:
        dtype = "int8"
        for f in (VISUAL_FILE, TEXTUAL_FILE):
            to_int8(out / f)
    if check and dtype != "float32":
        log(f"verifying {dtype} ONNX against PyTorch fp32:")
        results = verify(prep, out, dtype)
        if not print_verification(results, dtype):
            if dtype == "float16":
                raise ExportError(f"{out}: {dtype} ONNX output too far from PyTorch")
            # int8 is lossy by design: report, keep the files, record the numbers in the config.
            print(f"warning: {out}: int8 embeddings are below cosine {COSINE_MIN['int8']} against fp32 "
                  f"PyTorch on random inputs (see exporter.verification in {CONFIG_FILE})", file=sys.stderr)

    io_dtype = "float16" if fp16 else "float32"
    cfg: dict[str, Any] = {
        "format": FORMAT,
        "architecture": prep.architecture,
        "embed_dim": int(prep.embed_dim),
        "image_size": int(S),
        "image_mean": [float(v) for v in prep.image_mean],
        "image_std": [float(v) for v in prep.image_std],
        "context_length": int(ctx),
        "vocab_size": int(prep.vocab_size),
        "logit_scale": float(prep.logit_scale),
        "text_dynamic_length": bool(dynamic),
        "visual_dtype": io_dtype,
        "text_dtype": io_dtype,
        "quantization": "int8-dynamic" if int8 else None,
        "source": prep.source,
        "exporter": {"torch": torch.__version__.split("+")[0], "onnx_opset": int(opset),
                     "method": {"visual": how_v, "textual": how_t},
                     "pooled_last_block": pooled_last_block(prep)},
    }
    if results is not None:
        cfg["exporter"]["verification"] = {
            k: {"max_abs_diff": r["max_abs_diff"], "cosine_min": r["cosine_min"]} for k, r in results.items()
        }
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")
    log(f"wrote {cfg_path}")
    return cfg


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--from", dest="source", choices=["openai", "open_clip", "hf"],
                   help="where the weights come from (not with --random-init)")
    p.add_argument("--checkpoint", help="openai: .pt (TorchScript or state dict); open_clip: checkpoint file; "
                   "hf: CLIPModel directory")
    p.add_argument("--model", help="open_clip model name, e.g. ViT-B-32")
    p.add_argument("--model-config", type=Path,
                   help="open_clip: a model config JSON to register first (its file stem is the model name)")
    p.add_argument("--random-init", action="store_true", help="seeded random weights of an OpenAI architecture")
    p.add_argument("--arch", choices=list(ARCHS), help="architecture for --random-init")
    p.add_argument("--seed", type=int, default=0, help="seed for --random-init (default 0)")
    p.add_argument("--save-checkpoint", type=Path,
                   help="with --random-init: also torch.save the state dict (OpenAI layout) here")
    p.add_argument("--out", type=Path, required=True, help="output model directory")
    p.add_argument("--opset", type=int, default=18)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--fp16", action="store_true", help="float16 weights, inputs and outputs")
    g.add_argument("--int8", action="store_true", help="dynamic int8 quantization (onnxruntime.quantization)")
    p.add_argument("--no-verify", action="store_true", help="skip the onnxruntime-vs-PyTorch check")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)

    if a.save_checkpoint and not a.random_init:
        p.error("--save-checkpoint is only for --random-init")
    try:
        if a.random_init:
            if a.source:
                p.error("--random-init and --from are exclusive")
            if not a.arch:
                p.error("--random-init needs --arch")
            model = random_init_openai(a.arch, a.seed)
            if a.save_checkpoint:
                save_openai_checkpoint(model, a.save_checkpoint)
                print(f"wrote {a.save_checkpoint}")
            prep = prepare_openai(model, {"kind": "random-init", "checkpoint": str(a.save_checkpoint)
                                          if a.save_checkpoint else None, "seed": a.seed})
        elif a.source == "openai":
            if not a.checkpoint:
                p.error("--from openai needs --checkpoint")
            model = load_openai_checkpoint(Path(a.checkpoint))
            prep = prepare_openai(model, {"kind": "openai", "checkpoint": str(a.checkpoint), "seed": None})
        elif a.source == "open_clip":
            if a.model_config:
                try:
                    import open_clip  # type: ignore
                except ImportError:
                    p.error("--from open_clip needs the open-clip-torch package")
                if not a.model_config.is_file():
                    raise ExportError(f"{a.model_config}: model config not found")
                open_clip.add_model_config(str(a.model_config))
                a.model = a.model or a.model_config.stem
            if not a.model:
                p.error("--from open_clip needs --model")
            prep = prepare_open_clip(a.model, a.checkpoint, {"kind": "open_clip", "checkpoint": a.checkpoint,
                                                             "model": a.model, "seed": None})
        elif a.source == "hf":
            if not a.checkpoint:
                p.error("--from hf needs --checkpoint DIR")
            prep = prepare_hf(a.checkpoint, {"kind": "hf", "checkpoint": str(a.checkpoint), "seed": None})
        else:
            p.error("give --from openai|open_clip|hf or --random-init")
            return 2
        print(f"architecture {prep.architecture}: embed_dim {prep.embed_dim}, image {prep.image_size}, "
              f"logit_scale {prep.logit_scale:.6f}")
        export_prepared(prep, a.out, opset=a.opset, fp16=a.fp16, int8=a.int8, check=not a.no_verify)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
