"""The ``tiny-hf`` fixture: a transformers.js-style ONNX layout from a tiny random-init HF ``CLIPModel``.

Layout (as in the public transformers.js CLIP repositories)::

    tiny-hf/config.json                 CLIPConfig (transformers)
    tiny-hf/preprocessor_config.json    CLIPImageProcessor settings
    tiny-hf/onnx/vision_model.onnx      pixel_values f32 [batch,3,224,224] -> image_embeds [batch,D],
                                        last_hidden_state [batch,50,W]
    tiny-hf/onnx/text_model.onnx        input_ids i64 [batch,seq], attention_mask i64 [batch,seq]
                                        -> text_embeds [batch,D], last_hidden_state [batch,seq,W]
    tiny-hf/inputs/*.npy, tiny-hf/golden/*.npy

``inputs/pixel_values.npy`` and ``inputs/input_ids.npy`` are the same tensors as in ``tiny-vit``
(the reference ``preprocess`` and ``clip.tokenize``, not Hugging Face's processor);
``inputs/attention_mask.npy`` is 1 up to and including each row's EOT. The text model's result
does not depend on the mask (causal attention, pooling at the first EOT), so a loader may pass
all ones. The learned logit scale equals ``logit_scale_init_value`` in ``config.json``
(random init); ``projection_dim`` at the top level of ``config.json`` is the embedding size.
No ``tokenizer.json`` is written (clip-rs tokenizes with the reference BPE). Goldens come from
the transformers model in fp32: ``get_image_features`` / ``get_text_features`` and
``CLIPModel(...).logits_per_image``.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

SEED = 3


def tiny_hf_model() -> nn.Module:
    """Seeded random-init tiny transformers CLIPModel (quick_gelu, vocab 49408, context 77)."""
    from transformers import CLIPConfig, CLIPModel

    cfg = CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=8, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, hidden_act="quick_gelu",
                         bos_token_id=49406, eos_token_id=49407, pad_token_id=1),
        vision_config=dict(image_size=224, patch_size=32, hidden_size=64, intermediate_size=256,
                           num_hidden_layers=2, num_attention_heads=2, hidden_act="quick_gelu"),
        projection_dim=32,
    )
    torch.manual_seed(SEED)
    return CLIPModel._from_config(cfg, attn_implementation="eager").float().eval()


class _Vision(nn.Module):
    def __init__(self, m: nn.Module):
        super().__init__()
        self.m = m

    def forward(self, pixel_values: torch.Tensor):
        out = self.m.vision_model(pixel_values=pixel_values)
        return self.m.visual_projection(out.pooler_output), out.last_hidden_state


class _Text(nn.Module):
    def __init__(self, m: nn.Module):
        super().__init__()
        self.m = m

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        out = self.m.text_model(input_ids=input_ids, attention_mask=attention_mask)
        return self.m.text_projection(out.pooler_output), out.last_hidden_state


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dyn: dict[str, dict[int, str]]) -> str:
    """Dynamo export; falls back to the TorchScript exporter. Returns which one worked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            prog = torch.onnx.export(module, args, None, dynamo=True, opset_version=18, input_names=inputs,
                                     output_names=outputs, dynamic_axes=dyn, verbose=False)
            prog.save(str(path), external_data=False)
            return "dynamo"
        except Exception:  # noqa: BLE001
            torch.onnx.export(module, args, str(path), dynamo=False, opset_version=18, input_names=inputs,
                              output_names=outputs, dynamic_axes=dyn)
            return "torchscript"


def _strip_debug_metadata(path: Path) -> None:
    """Drop the exporter's per-node stack traces (local paths, line numbers) so files are stable."""
    import onnx

    m = onnx.load(str(path))
    for node in m.graph.node:
        del node.metadata_props[:]
    for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        del vi.metadata_props[:]
    onnx.save(m, str(path))


def build_tiny_hf(out: Path, pix: np.ndarray, ids: np.ndarray, texts: list[str],
                  manifest: dict[str, Any]) -> str:
    import onnxruntime as ort

    import export_onnx as E  # tools/ is on sys.path (make_fixtures.py puts it there)

    d = out / "tiny-hf"
    if d.exists():
        shutil.rmtree(d)
    (d / "onnx").mkdir(parents=True)
    model = tiny_hf_model()
    model.config.to_json_file(str(d / "config.json"))
    pre = {
        "crop_size": {"height": 224, "width": 224}, "do_center_crop": True, "do_convert_rgb": True,
        "do_normalize": True, "do_rescale": True, "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor", "image_processor_type": "CLIPImageProcessor",
        "image_mean": list(E.OPENAI_MEAN), "image_std": list(E.OPENAI_STD), "resample": 3,
        "rescale_factor": 1 / 255, "size": {"shortest_edge": 224},
    }
    (d / "preprocessor_config.json").write_text(json.dumps(pre, indent=2) + "\n")

    ids64 = ids.astype(np.int64)
    eot = ids64.argmax(-1)
    mask = (np.arange(ids.shape[1])[None, :] <= eot[:, None]).astype(np.int64)
    how_v = _export(_Vision(model), (torch.from_numpy(pix[:2]),), d / "onnx" / "vision_model.onnx",
                    ["pixel_values"], ["image_embeds", "last_hidden_state"], {"pixel_values": {0: "batch"}})
    how_t = _export(_Text(model), (torch.from_numpy(ids64[:2]), torch.from_numpy(mask[:2])),
                    d / "onnx" / "text_model.onnx", ["input_ids", "attention_mask"],
                    ["text_embeds", "last_hidden_state"],
                    {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}})

    for f in ("vision_model.onnx", "text_model.onnx"):
        _strip_debug_metadata(d / "onnx" / f)

    with torch.no_grad():
        tp, ti, tm = torch.from_numpy(pix), torch.from_numpy(ids64), torch.from_numpy(mask)
        img = E._tensor_of(model.get_image_features(pixel_values=tp)).numpy()
        txt = E._tensor_of(model.get_text_features(input_ids=ti, attention_mask=tm)).numpy()
        logits = model(input_ids=ti, pixel_values=tp, attention_mask=tm).logits_per_image.numpy()
    (d / "inputs").mkdir()
    (d / "golden").mkdir()
    np.save(d / "inputs" / "pixel_values.npy", pix)
    np.save(d / "inputs" / "input_ids.npy", ids)
    np.save(d / "inputs" / "attention_mask.npy", mask.astype(np.int32))
    (d / "inputs" / "texts.json").write_text(json.dumps(texts, ensure_ascii=False, indent=1) + "\n")
    np.save(d / "golden" / "image_embeds.npy", img.astype(np.float32))
    np.save(d / "golden" / "text_embeds.npy", txt.astype(np.float32))
    np.save(d / "golden" / "logits_per_image.npy", logits.astype(np.float32))

    so = ort.SessionOptions()
    so.log_severity_level = 3
    vs = ort.InferenceSession(str(d / "onnx" / "vision_model.onnx"), so, providers=["CPUExecutionProvider"])
    ts = ort.InferenceSession(str(d / "onnx" / "text_model.onnx"), so, providers=["CPUExecutionProvider"])
    got_i = vs.run(["image_embeds"], {"pixel_values": pix})[0]
    got_t = ts.run(["text_embeds"], {"input_ids": ids64, "attention_mask": mask})[0]
    short = np.nonzero(eot < 20)[0]
    n = int(eot[short].max()) + 1
    got_tn = ts.run(["text_embeds"], {"input_ids": ids64[short, :n], "attention_mask": mask[short, :n]})[0]
    meas = {"image": E.compare(img, got_i), "text": E.compare(txt, got_t),
            "text_short": {**E.compare(txt[short], got_tn), "seq": n}}
    size = sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
    manifest["tiny-hf"] = {"seed": SEED, "exporter": {"vision": how_v, "text": how_t}, "bytes": size,
                           "ort_vs_golden": meas, "transformers_config": "config.json"}
    readme = (__doc__ or "").strip() + "\n\nMeasured ONNX Runtime vs golden: " + json.dumps(
        {k: {"cosine_min": v["cosine_min"], "max_abs_diff": v["max_abs_diff"]} for k, v in meas.items()}) + "\n"
    (d / "README.md").write_text("# tiny-hf fixture\n\n" + readme)
    print(f"tiny-hf: {size / 1e6:.2f} MB (exporters: vision {how_v}, text {how_t})")
    E.print_verification(meas, "float32")
    return ""
