#!/usr/bin/env python3
"""Export the no-helmet model (helmet-detector==2.1.0's YOLOv12m weights) to ONNX.

The checkpoint was trained with the original YOLOv12 code, whose area-attention block has
separate `qk` and `v` convolutions where mainline ultralytics expects one `qkv`; the block's
forward is replaced by the original one for the export. Nothing is fetched: YOLO_OFFLINE
and a private config folder are set before ultralytics is imported.

usage: export_helmet.py WEIGHTS.pt OUT.onnx SIZE
"""
import os, shutil, sys, tempfile
from pathlib import Path

weights, out, size = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
work = Path(tempfile.mkdtemp(prefix="vigil-helmet-"))
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_CONFIG_DIR"] = str(work / "config")

import torch  # noqa: E402
from ultralytics import YOLO  # noqa: E402
from ultralytics.nn.modules import block  # noqa: E402


def original_area_attention(self, x):
    B, C, H, W = x.shape
    N = H * W
    qk = self.qk(x).flatten(2).transpose(1, 2)
    v = self.v(x)
    pp = self.pe(v)
    v = v.flatten(2).transpose(1, 2)
    if self.area > 1:
        qk = qk.reshape(B * self.area, N // self.area, C * 2)
        v = v.reshape(B * self.area, N // self.area, C)
        B, N, _ = qk.shape
    q, k = qk.split([C, C], dim=2)
    q = q.transpose(1, 2).reshape(B, self.num_heads, self.head_dim, N)
    k = k.transpose(1, 2).reshape(B, self.num_heads, self.head_dim, N)
    v = v.transpose(1, 2).reshape(B, self.num_heads, self.head_dim, N)
    attn = ((q.transpose(-2, -1) @ k) * (self.head_dim ** -0.5)).softmax(dim=-1)
    x = (v @ attn.transpose(-2, -1)).permute(0, 3, 1, 2)
    if self.area > 1:
        x = x.reshape(B // self.area, N * self.area, C)
        B, N, _ = x.shape
    x = x.reshape(B, H, W, C).permute(0, 3, 1, 2)
    return self.proj(x + pp)


block.AAttn.forward = original_area_attention
local = work / "helmet.pt"
shutil.copy(weights, local)
model = YOLO(str(local))
names = model.names
if names != {0: "With Helmet", 1: "Without Helmet"}:
    sys.exit(f"export_helmet: unexpected classes {names}")
with torch.no_grad():
    exported = model.export(format="onnx", imgsz=size, opset=17, dynamic=False, simplify=True,
                            batch=1, device="cpu")
out.parent.mkdir(parents=True, exist_ok=True)
shutil.move(exported, out)
shutil.rmtree(work, ignore_errors=True)
print(f"export_helmet: wrote {out}")
