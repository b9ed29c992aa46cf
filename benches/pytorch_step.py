"""PyTorch-eager baseline of the GA-DMS pre-training step, written from the method spec
(../shared/docs/gadms-method.md §1.9, §2, §4) the way the authors' code computes it: CLIP
encoders with nn.MultiheadAttention, the last text blocks re-run with one attention head,
one autograd.grad call per re-run layer, the MLM head over every position, SDM + 0.3·MTP,
Adam (eps 1e-3, L2 4e-5). fp32 on the CPU, random inputs.

It times the same configurations as `runner/benches/train_step.rs`, so that the two
print a ratio measured on one machine. Usage:
    .venv/bin/python benches/pytorch_step.py [golden|tiny|vit-b16 ...]
"""

import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    # width, vision layers/heads, text layers/heads, image size, patch, stride, vocab,
    # context, embed, dense (re-run) layers, batch
    "golden": dict(vw=128, vl=2, vh=2, tw=128, tl=9, th=2, img=(96, 32), patch=16, stride=12,
                   vocab=2048, ctx=77, embed=128, dense=8, batch=64),
    "tiny": dict(vw=128, vl=4, vh=2, tw=128, tl=4, th=2, img=(96, 32), patch=16, stride=16,
                 vocab=49408, ctx=32, embed=128, dense=4, batch=64),
    "vit-b16": dict(vw=768, vl=12, vh=12, tw=512, tl=12, th=8, img=(384, 128), patch=16, stride=16,
                    vocab=49408, ctx=77, embed=512, dense=8, batch=8),
}


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    def __init__(self, w, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(w, heads)
        self.ln_1 = nn.LayerNorm(w)
        self.mlp = nn.Sequential(nn.Linear(w, 4 * w), QuickGELU(), nn.Linear(4 * w, w))
        self.ln_2 = nn.LayerNorm(w)

    def forward(self, x, mask=None):  # x: [L, B, W]
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))

    def dense(self, x, mask):
        """Single-head attention over the full width, keeping the attention output."""
        h = self.ln_1(x)
        q, k, v = F.linear(h, self.attn.in_proj_weight, self.attn.in_proj_bias).chunk(3, dim=-1)
        w = x.shape[-1]
        logits = torch.einsum("lbw,mbw->blm", q / math.sqrt(w), k) + mask
        attn = logits.softmax(-1)
        a_out = torch.einsum("blm,mbw->lbw", attn, v)
        x = x + self.attn.out_proj(a_out)
        return x + self.mlp(self.ln_2(x)), (q, k, v, attn, a_out)


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        ny = (c["img"][0] - c["patch"]) // c["stride"] + 1
        nx = (c["img"][1] - c["patch"]) // c["stride"] + 1
        self.conv1 = nn.Conv2d(3, c["vw"], c["patch"], c["stride"], bias=False)
        self.cls = nn.Parameter(torch.randn(c["vw"]) * 0.02)
        self.vpos = nn.Parameter(torch.randn(1 + ny * nx, c["vw"]) * 0.01)
        self.ln_pre = nn.LayerNorm(c["vw"])
        self.vblocks = nn.ModuleList(Block(c["vw"], c["vh"]) for _ in range(c["vl"]))
        self.ln_post_v = nn.LayerNorm(c["vw"])
        self.vproj = nn.Parameter(torch.randn(c["vw"], c["embed"]) * 0.02)
        self.tok = nn.Embedding(c["vocab"], c["tw"])
        self.tpos = nn.Parameter(torch.randn(c["ctx"], c["tw"]) * 0.01)
        self.tblocks = nn.ModuleList(Block(c["tw"], c["th"]) for _ in range(c["tl"]))
        self.ln_final = nn.LayerNorm(c["tw"])
        self.tproj = nn.Parameter(torch.randn(c["tw"], c["embed"]) * 0.02)
        e = c["embed"]
        self.cross_attn = nn.MultiheadAttention(e, e // 64, batch_first=True)
        self.cross = nn.ModuleList(Block(e, e // 64) for _ in range(4))
        self.ln_pre_t, self.ln_pre_i, self.ln_post = nn.LayerNorm(e), nn.LayerNorm(e), nn.LayerNorm(e)
        self.mlm_head = nn.Sequential(nn.Linear(e, e), QuickGELU(), nn.LayerNorm(e), nn.Linear(e, c["vocab"]))
        L = c["ctx"]
        self.register_buffer("causal", torch.full((L, L), float("-inf")).triu(1))

    def image(self, x):
        x = self.conv1(x).flatten(2).permute(0, 2, 1)
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], 1) + self.vpos
        x = self.ln_pre(x).permute(1, 0, 2)
        for b in self.vblocks:
            x = b(x)
        return self.ln_post_v(x.permute(1, 0, 2)) @ self.vproj  # [B, N, E]

    def text_hidden(self, ids, blocks):
        x = (self.tok(ids) + self.tpos).permute(1, 0, 2)
        for b in self.tblocks[:blocks]:
            x = b(x, self.causal)
        return x  # [L, B, W]

    def text(self, ids):
        x = self.text_hidden(ids, len(self.tblocks))
        return self.ln_final(x.permute(1, 0, 2)) @ self.tproj  # [B, L, E]


def msp(f):  # [L, B, W] multi-scale pooling, scales 1 and 2
    L = f.shape[0]
    pairs = f[: L // 2 * 2].reshape(L // 2, 2, *f.shape[1:]).mean(1)
    pooled = torch.cat([pairs, f[L // 2 * 2:].mean(0, keepdim=True)], 0) if L % 2 else pairs
    up = F.interpolate(pooled.permute(1, 2, 0), size=L, mode="linear", align_corners=False).permute(2, 0, 1)
    return (f + up) / 2


def gass(model, image_feats, mid, eos):
    B = eos.shape[0]
    rows = torch.arange(B)
    x, traces = mid, []
    for b in model.tblocks[len(model.tblocks) - model.c["dense"]:]:
        x, t = b.dense(x, model.causal)
        traces.append(t)
    t_raw = model.ln_final(x.permute(1, 0, 2))[rows, eos] @ model.tproj
    cosine = F.normalize(image_feats[:, 0], dim=-1) @ F.normalize(t_raw, dim=-1).t()
    eye = torch.eye(B)
    total = 0
    L = mid.shape[0]
    pos = torch.arange(L)
    mask = ((pos[None] > 0) & (pos[None] < eos[:, None])).float()
    for q, k, v, attn, a_out in traces:  # the authors: one autograd.grad call per layer
        g = torch.autograd.grad(cosine, a_out, grad_outputs=eye, retain_graph=True)[0]
        g = g[eos, rows]  # [B, W]
        qe = F.normalize(msp(q)[eos, rows], dim=-1)
        kn = F.normalize(msp(k), dim=-1)
        cos = torch.einsum("bw,lbw->bl", qe, kn)
        w = (cos - cos.min(1, keepdim=True)[0]) / (cos.max(1, keepdim=True)[0] - cos.min(1, keepdim=True)[0] + 1e-8)
        imp = w * torch.einsum("bw,lbw->bl", g, v)
        a = attn[rows, eos]
        total = total + mask * imp * a / (imp.sum(1, keepdim=True) + 1e-8)
    e = F.relu(total) * mask
    return (e - e.min()) / (e.max() - e.min())


def sdm(i, t, pids, scale=50.0, eps=1e-8):
    i, t = F.normalize(i, dim=-1), F.normalize(t, dim=-1)
    t2i = scale * t @ i.t()
    y = (pids[:, None] == pids[None]).float()
    q = y / y.sum(1, keepdim=True)
    loss = 0
    for p in (t2i.t(), t2i):
        loss = loss + (p.softmax(1) * (p.log_softmax(1) - torch.log(q + eps))).sum(1).mean()
    return loss


def step(model, opt, batch):
    images, clean, noise, mlm_ids, labels, pids = batch
    eos = clean.argmax(-1)
    rows = torch.arange(clean.shape[0])
    image_feats = model.image(images)
    mid = model.text_hidden(clean, len(model.tblocks) - model.c["dense"])
    scores = gass(model, image_feats, mid, eos)
    t = model.text(noise)[rows, eos]
    loss = sdm(image_feats[:, 0], t, pids)
    x = model.text(mlm_ids)
    kv = model.ln_pre_i(image_feats)
    x = model.cross_attn(model.ln_pre_t(x), kv, kv, need_weights=False)[0].permute(1, 0, 2)
    for b in model.cross:
        x = b(x)
    logits = model.mlm_head(model.ln_post(x.permute(1, 0, 2)))  # every position
    loss = loss + 0.3 * F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=0)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item(), scores


def random_batch(c):
    B, L, V = c["batch"], c["ctx"], c["vocab"]
    lengths = torch.randint(L // 4, L // 2, (B, 1))
    pos = torch.arange(L)[None]
    ids = torch.randint(1, V - 3, (B, L))
    ids = torch.where(pos < lengths, ids, torch.zeros_like(ids))
    ids = torch.where(pos == lengths, torch.full_like(ids, V - 1), ids)
    ids[:, 0] = V - 2
    labelled = (torch.rand(B, L) < 0.15) & (pos > 0) & (pos < lengths)
    labels = torch.where(labelled, ids, torch.zeros_like(ids))
    mlm = torch.where(labelled, torch.full_like(ids, V - 3), ids)
    return torch.randn(B, 3, *c["img"]), ids, ids.clone(), mlm, labels, torch.arange(B)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(int(__import__("os").environ.get("THREADS", "2")))
    names = sys.argv[1:] or list(CONFIGS)
    print(f"PyTorch {torch.__version__} eager, CPU fp32, {torch.get_num_threads()} threads, median of 5 steps after 2 warm-up")
    print(f"{'config':<10} {'batch':>5} {'step (s)':>9} {'samples/s':>10}")
    for name in names:
        c = CONFIGS[name]
        model = Model(c)
        opt = torch.optim.Adam(model.parameters(), lr=1e-5, eps=1e-3, weight_decay=4e-5)
        batch = random_batch(c)
        times = []
        for i in range(7):
            start = time.perf_counter()
            step(model, opt, batch)
            if i >= 2:
                times.append(time.perf_counter() - start)
        median = statistics.median(times)
        print(f"{name:<10} {c['batch']:>5} {median:>9.3f} {c['batch'] / median:>10.1f}")


if __name__ == "__main__":
    main()
