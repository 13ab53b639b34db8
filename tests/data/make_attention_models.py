#!/usr/bin/python3
"""Writes tiny attention models as torch.onnx exports them, for kiln's FuseAttention pass test
(tests/passes/fuse_attention_test.cc). Random weights, a few KB each; the test compares the fused
graph with the unfused one, so no expected outputs are stored.

  attn_bert.onnx   2 encoder layers in the Hugging Face BERT/ViT form: Linear q/k/v, view +
                   permute head split, q @ k.transpose(-1, -2), / sqrt(d), + extended padding mask
                   ((1 - mask) * -10000 from a [B, S] input), softmax, @ v. Inputs x [2, 5, 16],
                   mask [2, 5] (1 keep, 0 pad). 2 attention cores.
  attn_gpt.onnx    1 GPT-2 block: one c_attn Linear split in three, a causal mask applied with
                   torch.where(tril, scores, -10000) after the scale. Input x [2, 6, 16].
                   1 attention core.
  attn_mha.onnx    torch.nn.MultiheadAttention (batch_first) with a key_padding_mask: 3-D bmm
                   form, q scaled before the product, mask added by baddbmm. Inputs x [2, 5, 16],
                   pad [2, 5] (bool, true = padding). 1 attention core.
  attn_sdpa.onnx   the form torch 2's scaled_dot_product_attention exports: sqrt(scale) applied to
                   q and to k-transposed before the product, a float causal mask added, softmax,
                   @ v. Input x [1, 7, 16]. 1 attention core.
  attn_gqa.onnx    grouped-query attention as Llama writes it: 4 query heads, 2 key/value heads
                   repeated by expand + reshape (repeat_kv), scores * (1 / sqrt(d)).
                   Input x [2, 5, 16]. 1 attention core.

torch 1.13 and onnx 1.12 (Debian's interpreter here):

    /usr/bin/python3 tests/data/make_attention_models.py
"""
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(14)
HID, HEADS = 16, 2


def split_heads(x, heads):
    b, s, _ = x.shape
    return x.view(b, s, heads, -1).permute(0, 2, 1, 3)


def merge_heads(x):
    b, h, s, d = x.shape
    return x.permute(0, 2, 1, 3).contiguous().view(b, s, h * d)


class BertLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(HID, HID), nn.Linear(HID, HID), nn.Linear(HID, HID)
        self.o = nn.Linear(HID, HID)
        self.ln = nn.LayerNorm(HID)

    def forward(self, x, ext_mask):
        q, k, v = (split_heads(m(x), HEADS) for m in (self.q, self.k, self.v))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(HID // HEADS)
        p = F.softmax(scores + ext_mask, dim=-1)
        return self.ln(x + self.o(merge_heads(torch.matmul(p, v))))


class Bert(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([BertLayer(), BertLayer()])

    def forward(self, x, mask):
        ext = (1.0 - mask[:, None, None, :]) * -10000.0
        for layer in self.layers:
            x = layer(x, ext)
        return x


class Gpt(nn.Module):
    def __init__(self, seq):
        super().__init__()
        self.c_attn, self.c_proj = nn.Linear(HID, 3 * HID), nn.Linear(HID, HID)
        self.register_buffer("bias", torch.tril(torch.ones(seq, seq, dtype=torch.bool))[None, None])

    def forward(self, x):
        q, k, v = self.c_attn(x).split(HID, dim=2)
        q, k, v = split_heads(q, HEADS), split_heads(k, HEADS), split_heads(v, HEADS)
        w = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(HID // HEADS)
        s = x.shape[1]
        w = torch.where(self.bias[:, :, :s, :s], w, torch.tensor(-10000.0))
        return self.c_proj(merge_heads(torch.matmul(F.softmax(w, dim=-1), v)))


class Mha(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(HID, HEADS, batch_first=True)

    def forward(self, x, pad):
        return self.mha(x, x, x, key_padding_mask=pad, need_weights=False)[0]


class Sdpa(nn.Module):
    def __init__(self, seq):
        super().__init__()
        self.qkv, self.o = nn.Linear(HID, 3 * HID), nn.Linear(HID, HID)
        causal = torch.triu(torch.full((seq, seq), float("-inf")), diagonal=1)
        self.register_buffer("causal", causal)

    def forward(self, x):
        q, k, v = (split_heads(t, HEADS) for t in self.qkv(x).chunk(3, dim=-1))
        s = math.sqrt(1.0 / math.sqrt(HID // HEADS))
        w = torch.matmul(q * s, k.transpose(-2, -1) * s) + self.causal
        return self.o(merge_heads(torch.matmul(torch.softmax(w, dim=-1), v)))


class Gqa(nn.Module):
    def __init__(self):
        super().__init__()
        self.h, self.hkv, self.d = 4, 2, 4
        self.q = nn.Linear(HID, self.h * self.d, bias=False)
        self.k = nn.Linear(HID, self.hkv * self.d, bias=False)
        self.v = nn.Linear(HID, self.hkv * self.d, bias=False)
        self.o = nn.Linear(self.h * self.d, HID, bias=False)

    def repeat_kv(self, x):
        b, hkv, s, d = x.shape
        rep = self.h // self.hkv
        return x[:, :, None, :, :].expand(b, hkv, rep, s, d).reshape(b, hkv * rep, s, d)

    def forward(self, x):
        q = split_heads(self.q(x), self.h)
        k = self.repeat_kv(split_heads(self.k(x), self.hkv))
        v = self.repeat_kv(split_heads(self.v(x), self.hkv))
        w = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(self.d))
        return self.o(merge_heads(torch.matmul(F.softmax(w, dim=-1, dtype=torch.float32), v)))


def export(model, args, names, path):
    model.eval()
    torch.onnx.export(model, args, os.path.join(HERE, path), input_names=names,
                      output_names=["y"], opset_version=14, do_constant_folding=True)
    print("wrote", path, os.path.getsize(os.path.join(HERE, path)), "bytes")


x5 = torch.randn(2, 5, HID)
mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.float32)
export(Bert(), (x5, mask), ["x", "mask"], "attn_bert.onnx")
export(Gpt(6), (torch.randn(2, 6, HID),), ["x"], "attn_gpt.onnx")
pad = torch.tensor([[False] * 5, [False, False, False, True, True]])
export(Mha(), (x5, pad), ["x", "pad"], "attn_mha.onnx")
export(Sdpa(7), (torch.randn(1, 7, HID),), ["x"], "attn_sdpa.onnx")
export(Gqa(), (x5,), ["x"], "attn_gqa.onnx")
