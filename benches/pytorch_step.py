"""PyTorch-eager baseline of the GA-DMS pre-training step, written from the method spec
(docs/method.md §1.9, §2, §4): SDM + 0.3·MTP with the gradient-attention
score, Adam (eps 1e-3, L2 4e-5), random inputs.

Two algorithms compute the same losses:
- `reference` (the baseline, default) computes the step the way the authors' code does:
  CLIP encoders with nn.MultiheadAttention, the last text blocks re-run with one attention
  head, one autograd.grad call per re-run layer, the MLM head over every position.
- `gadms` computes it the way gadms's step does (runner/src/train/step.rs): batch-first
  blocks with fused scaled_dot_product_attention, one backward pass for every re-run layer's
  gradient, the vocabulary projection only at labelled positions, the alignment text encoded
  up to the batch's latest EOS only, multi-scale pooling with a cached interpolation matrix
  in place of F.interpolate. Its FLOPs are what
  runner/src/model/flops.rs counts, and `--count-flops` is how that count is checked.

It times the configurations of `runner/benches/train_step.rs` (CPU, fp32, 2 threads by
default) and, with `--device cuda`, the same step on a GPU, optionally under bf16 autocast
(fp32 master weights, as gadms's `train.precision = "bf16"`), with the peak of
torch.cuda.max_memory_allocated. `--matmul-peak N` instead times N×N×N matrix products, the
denominator of MFU in benches/gpu.sh. Usage:
    .venv/bin/python benches/pytorch_step.py [golden|tiny|vit-b16 ...]
    python3 benches/pytorch_step.py vit-b16 --device cuda --precision bf16 --batch 128 --json out.json
    .venv/bin/python benches/pytorch_step.py golden --algorithm gadms --count-flops
    python3 benches/pytorch_step.py --matmul-peak 8192 --device cuda
"""

import argparse
import json
import math
import os
import statistics
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
MTP_DEPTH = 4


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

    def forward(self, x, mask=None):  # reference: x [L, B, W]
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))

    def dense(self, x, mask):
        """Reference: single-head attention over the full width, keeping the attention output."""
        h = self.ln_1(x)
        q, k, v = F.linear(h, self.attn.in_proj_weight, self.attn.in_proj_bias).chunk(3, dim=-1)
        w = x.shape[-1]
        logits = torch.einsum("lbw,mbw->blm", q / math.sqrt(w), k) + mask
        attn = logits.softmax(-1)
        a_out = torch.einsum("blm,mbw->lbw", attn, v)
        x = x + self.attn.out_proj(a_out)
        return x + self.mlp(self.ln_2(x)), (q, k, v, attn, a_out)

    def fused(self, x, causal=False):  # gadms: x [B, L, W], fused attention
        h = self.ln_1(x)
        x = x + self.attn.out_proj(attend(self.attn, h, h, causal, fused_qkv=True))
        return x + self.mlp(self.ln_2(x))

    def dense_batch_first(self, x, mask):
        """gadms: the single-head re-run of `dense` on [B, L, W]."""
        h = self.ln_1(x)
        q, k, v = F.linear(h, self.attn.in_proj_weight, self.attn.in_proj_bias).chunk(3, dim=-1)
        attn = ((q / math.sqrt(x.shape[-1])) @ k.transpose(1, 2) + mask).softmax(-1)
        a_out = attn @ v
        x = x + self.attn.out_proj(a_out)
        return x + self.mlp(self.ln_2(x)), (q, k, v, attn, a_out)


def attend(mha, q_in, kv_in, causal, fused_qkv=False):
    """Multi-head attention of `mha`'s weights with fused SDPA, batch-first; the output
    before `out_proj`. Self-attention projects q, k and v in one product, as gadms does."""
    B, Lq, W = q_in.shape
    h = mha.num_heads
    w, b = mha.in_proj_weight, mha.in_proj_bias
    if fused_qkv:
        q, k, v = F.linear(q_in, w, b).chunk(3, dim=-1)
    else:
        q = F.linear(q_in, w[:W], b[:W])
        k, v = F.linear(kv_in, w[W:], b[W:]).chunk(2, dim=-1)

    def heads(t):
        return t.reshape(B, t.shape[1], h, W // h).transpose(1, 2)

    y = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=causal)
    return y.transpose(1, 2).reshape(B, Lq, W)


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
        self.cross = nn.ModuleList(Block(e, e // 64) for _ in range(MTP_DEPTH))
        self.ln_pre_t, self.ln_pre_i, self.ln_post = nn.LayerNorm(e), nn.LayerNorm(e), nn.LayerNorm(e)
        self.mlm_head = nn.Sequential(nn.Linear(e, e), QuickGELU(), nn.LayerNorm(e), nn.Linear(e, c["vocab"]))
        L = c["ctx"]
        self.register_buffer("causal", torch.full((L, L), float("-inf")).triu(1))

    def patches(self, x):
        x = self.conv1(x).flatten(2).permute(0, 2, 1)
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], 1) + self.vpos
        return self.ln_pre(x)  # [B, N, W]

    def image(self, x):
        x = self.patches(x).permute(1, 0, 2)
        for b in self.vblocks:
            x = b(x)
        return self.ln_post_v(x.permute(1, 0, 2)) @ self.vproj  # [B, N, E]

    def image_fused(self, x):
        x = self.patches(x)
        for b in self.vblocks:
            x = b.fused(x)
        return self.ln_post_v(x) @ self.vproj

    def text_hidden(self, ids, blocks):
        x = (self.tok(ids) + self.tpos).permute(1, 0, 2)
        for b in self.tblocks[:blocks]:
            x = b(x, self.causal)
        return x  # [L, B, W]

    def text(self, ids):
        x = self.text_hidden(ids, len(self.tblocks))
        return self.ln_final(x.permute(1, 0, 2)) @ self.tproj  # [B, L, E]

    def text_hidden_fused(self, ids, blocks):
        x = self.tok(ids) + self.tpos[: ids.shape[1]]
        for b in self.tblocks[:blocks]:
            x = b.fused(x, causal=True)
        return x  # [B, L, W]

    def text_fused(self, ids):
        return self.ln_final(self.text_hidden_fused(ids, len(self.tblocks))) @ self.tproj


def msp(f):  # reference: [L, B, W] multi-scale pooling, scales 1 and 2
    L = f.shape[0]
    pairs = f[: L // 2 * 2].reshape(L // 2, 2, *f.shape[1:]).mean(1)
    pooled = torch.cat([pairs, f[L // 2 * 2:].mean(0, keepdim=True)], 0) if L % 2 else pairs
    up = F.interpolate(pooled.permute(1, 2, 0), size=L, mode="linear", align_corners=False).permute(2, 0, 1)
    return (f + up) / 2


RESIZE_MATRICES = {}


def resize_matrix(source, target, device, dtype):
    """F.interpolate(mode="linear", align_corners=False) from `source` to `target` positions
    as a [target, source] matrix, built once per (source, target, device, dtype) as gadms's
    plugins/masking/src/score/resize.rs does: upsample_linear1d costs milliseconds per call
    on a GPU, the matrix product microseconds."""
    key = (source, target, device, dtype)
    if key not in RESIZE_MATRICES:
        m = torch.zeros(target, source, dtype=torch.float64)
        for i in range(target):
            x = max((i + 0.5) * source / target - 0.5, 0.0)
            lo = min(math.floor(x), source - 1)
            lam = min(max(x - lo, 0.0), 1.0)
            m[i, lo] += 1 - lam
            m[i, min(lo + 1, source - 1)] += lam
        RESIZE_MATRICES[key] = m.to(device=device, dtype=dtype)
    return RESIZE_MATRICES[key]


def msp_fused(f):  # gadms: [B, L, W], scale 1 as the identity, the resize as a matrix product
    B, L, W = f.shape
    pairs = f[:, : L // 2 * 2].reshape(B, L // 2, 2, W).mean(2)
    pooled = torch.cat([pairs, f[:, L // 2 * 2:].mean(1, keepdim=True)], 1) if L % 2 else pairs
    return (f + resize_matrix(pooled.shape[1], L, f.device, f.dtype) @ pooled) / 2


def caption_mask(eos, L):
    pos = torch.arange(L, device=eos.device)
    return ((pos[None] > 0) & (pos[None] < eos[:, None])).float()


def minmax_rows(cos):
    lo, hi = cos.min(1, keepdim=True)[0], cos.max(1, keepdim=True)[0]
    return (cos - lo) / (hi - lo + 1e-8)


def gass(model, image_feats, mid, eos):
    """Reference: one autograd.grad call per re-run layer."""
    B = eos.shape[0]
    rows = torch.arange(B, device=eos.device)
    x, traces = mid, []
    for b in model.tblocks[len(model.tblocks) - model.c["dense"]:]:
        x, t = b.dense(x, model.causal)
        traces.append(t)
    t_raw = model.ln_final(x.permute(1, 0, 2))[rows, eos] @ model.tproj
    cosine = F.normalize(image_feats[:, 0], dim=-1) @ F.normalize(t_raw, dim=-1).t()
    eye = torch.eye(B, device=eos.device, dtype=cosine.dtype)
    total = 0
    mask = caption_mask(eos, mid.shape[0])
    for q, k, v, attn, a_out in traces:  # the authors: one autograd.grad call per layer
        g = torch.autograd.grad(cosine, a_out, grad_outputs=eye, retain_graph=True)[0]
        g = g[eos, rows]  # [B, W]
        qe = F.normalize(msp(q)[eos, rows], dim=-1)
        kn = F.normalize(msp(k), dim=-1)
        w = minmax_rows(torch.einsum("bw,lbw->bl", qe, kn))
        imp = w * torch.einsum("bw,lbw->bl", g, v)
        a = attn[rows, eos]
        total = total + mask * imp * a / (imp.sum(1, keepdim=True) + 1e-8)
    e = F.relu(total) * mask
    return (e - e.min()) / (e.max() - e.min())


def gass_fused(model, image_cls, mid, eos):
    """gadms: the re-run from a detached state and one backward pass to every layer's
    attention output (plugins/masking/src/score/tail.rs); the maps on detached tensors."""
    B, L, _ = mid.shape
    rows = torch.arange(B, device=eos.device)
    x, traces = mid.detach().requires_grad_(True), []
    for b in model.tblocks[len(model.tblocks) - model.c["dense"]:]:
        x, t = b.dense_batch_first(x, model.causal)
        traces.append(t)
    t_raw = model.ln_final(x[rows, eos]) @ model.tproj
    cosine = F.normalize(image_cls.detach(), dim=-1) @ F.normalize(t_raw, dim=-1).t()
    grads = torch.autograd.grad(cosine.diagonal().sum(), [t[4] for t in traces])
    total = 0
    mask = caption_mask(eos, L)
    with torch.no_grad():
        for (q, k, v, attn, _), g in zip(traces, grads):
            g = g[rows, eos]  # [B, W]
            qe = F.normalize(msp_fused(q)[rows, eos], dim=-1)
            kn = F.normalize(msp_fused(k), dim=-1)
            w = minmax_rows((kn @ qe.unsqueeze(-1)).squeeze(-1))
            imp = w * (v @ g.unsqueeze(-1)).squeeze(-1)
            a = attn[rows, eos] * mask
            total = total + mask * imp * a / (imp.sum(1, keepdim=True) + 1e-8)
        e = F.relu(total) * mask
        return (e - e.min()) / (e.max() - e.min())


def sdm(i, t, pids, scale=50.0, eps=1e-8):
    i, t = F.normalize(i.float(), dim=-1), F.normalize(t.float(), dim=-1)
    t2i = scale * t @ i.t()
    y = (pids[:, None] == pids[None]).float()
    q = y / y.sum(1, keepdim=True)
    loss = 0
    for p in (t2i.t(), t2i):
        loss = loss + (p.softmax(1) * (p.log_softmax(1) - torch.log(q + eps))).sum(1).mean()
    return loss


def forward_reference(model, batch):
    images, clean, noise, mlm_ids, labels, _, pids, _ = batch
    eos = clean.argmax(-1)
    rows = torch.arange(clean.shape[0], device=clean.device)
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
    mtp = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=0)
    return loss + 0.3 * mtp, scores


def forward_fused(model, batch):
    images, clean, noise, mlm_ids, labels, positions, pids, alignment_len = batch
    eos = clean.argmax(-1)
    rows = torch.arange(clean.shape[0], device=clean.device)
    image_feats = model.image_fused(images)
    with torch.no_grad():
        mid = model.text_hidden_fused(clean, len(model.tblocks) - model.c["dense"])
    scores = gass_fused(model, image_feats[:, 0], mid, eos)
    t = model.text_fused(noise[:, :alignment_len])[rows, eos]  # causal: nothing after EOS counts
    loss = sdm(image_feats[:, 0], t, pids)
    x = model.text_fused(mlm_ids)
    x = attend(model.cross_attn, model.ln_pre_t(x), model.ln_pre_i(image_feats), causal=False)
    x = model.cross_attn.out_proj(x)
    for b in model.cross:
        x = b.fused(x)
    e = x.shape[-1]
    picked = model.ln_post(x).reshape(-1, e).index_select(0, positions)  # labelled rows only
    logits = model.mlm_head(picked)
    mtp = F.cross_entropy(logits.float(), labels.reshape(-1).index_select(0, positions))
    return loss + 0.3 * mtp, scores


FORWARD = {"reference": forward_reference, "gadms": forward_fused}


def step(model, opt, batch, forward, bf16):
    with torch.autocast(batch[0].device.type, dtype=torch.bfloat16, enabled=bf16):
        loss, scores = forward(model, batch)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item(), scores


def random_batch(c, B, device):
    """Captions fill a quarter to half of the context; 15 % of their tokens are labelled."""
    L, V = c["ctx"], c["vocab"]
    lengths = torch.randint(L // 4, L // 2, (B, 1))
    pos = torch.arange(L)[None]
    ids = torch.randint(1, V - 3, (B, L))
    ids = torch.where(pos < lengths, ids, torch.zeros_like(ids))
    ids = torch.where(pos == lengths, torch.full_like(ids, V - 1), ids)
    ids[:, 0] = V - 2
    labelled = (torch.rand(B, L) < 0.15) & (pos > 0) & (pos < lengths)
    labels = torch.where(labelled, ids, torch.zeros_like(ids))
    mlm = torch.where(labelled, torch.full_like(ids, V - 3), ids)
    positions = labels.reshape(-1).nonzero().squeeze(1)
    batch = (torch.randn(B, 3, *c["img"]), ids, ids.clone(), mlm, labels, positions, torch.arange(B))
    # The alignment text's length up to the latest EOS, known on the host as gadms's
    # collator knows it (the `gadms` algorithm encodes only that prefix).
    return tuple(t.to(device) for t in batch) + (int(lengths.max()) + 1,)


def count_flops(name, c, args):
    """One step under FlopCounterMode, with attention in explicit products (the math
    backend) so that every matrix product is seen; prints one JSON line."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    B = args.batch or c["batch"]
    model = Model(c)
    opt = torch.optim.Adam(model.parameters(), lr=1e-5, eps=1e-3, weight_decay=4e-5)
    batch = random_batch(c, B, "cpu")
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        step(model, opt, batch, FORWARD[args.algorithm], False)
    print(json.dumps({"config": name, "algorithm": args.algorithm, "batch": B,
                      "model": {k: v for k, v in c.items() if k != "batch"},
                      "labelled": int(batch[5].numel()), "alignment_len": batch[7], "mtp_depth": MTP_DEPTH,
                      "flops": counter.get_total_flops()}))


def time_config(name, c, args, device):
    B = args.batch or c["batch"]
    model = Model(c).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-5, eps=1e-3, weight_decay=4e-5)
    batch = random_batch(c, B, device)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(args.warmup + args.steps):
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step(model, opt, batch, FORWARD[args.algorithm], args.precision == "bf16")  # .item() syncs
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    if args.profile:
        profile_steps(lambda: step(model, opt, batch, FORWARD[args.algorithm], args.precision == "bf16"),
                      device, args.profile)
    return {"config": name, "algorithm": args.algorithm, "device": str(device),
            "precision": args.precision, "batch": B, "labelled": int(batch[5].numel()),
            "steps": args.steps, "step_s": median, "samples_per_s": B / median,
            "peak_mib": torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None}


def profile_steps(run_step, device, path, steps=3):
    """torch.profiler over `steps` more steps (after the timed ones, so the timing is not
    disturbed): the operators and kernels by their own device time, top 50, written to
    `path`. Its kernel names say which attention kernel runs (flash, memory-efficient or
    the math fallback) and what the rest of the step spends its time on."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            run_step()
        if cuda:
            torch.cuda.synchronize(device)
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=50, max_name_column_width=90)
    with open(path, "w") as f:
        f.write(f"torch.profiler over {steps} steps, sorted by {key}\n{table}\n")


def matmul_peak(n, device):
    """TFLOP/s of n×n×n products (bf16 on a GPU, fp32 on the CPU): mean of 10 after 3
    warm-ups, on random data."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / 10
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    return {"n": n, "dtype": str(dtype).removeprefix("torch."), "device": str(device),
            "device_name": name, "torch": torch.__version__, "tflop_per_s": 2 * n**3 / seconds / 1e12}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("configs", nargs="*", help=f"any of {', '.join(CONFIGS)} (default: all)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--algorithm", choices=list(FORWARD), default="reference")
    p.add_argument("--batch", type=int, help="override the configuration's batch")
    p.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--profile", metavar="FILE",
                   help="after timing, profile 3 more steps with torch.profiler and write the table here")
    p.add_argument("--count-flops", action="store_true", help="count one CPU step's FLOPs instead")
    p.add_argument("--matmul-peak", type=int, metavar="N", help="time N×N×N matrix products instead")
    args = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")
    names = args.configs or list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        p.error(f"unknown configuration {', '.join(unknown)}; expected any of {', '.join(CONFIGS)}")
    if args.matmul_peak:
        results = [matmul_peak(args.matmul_peak, device)]
        print(json.dumps(results[0]))
    elif args.count_flops:
        for name in names:
            count_flops(name, CONFIGS[name], args)
        return
    else:
        where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
        print(f"PyTorch {torch.__version__} eager ({args.algorithm}), {where}, {args.precision}, "
              f"median of {args.steps} steps after {args.warmup} warm-up")
        print(f"{'config':<10} {'batch':>5} {'step (s)':>9} {'samples/s':>10}"
              + (f" {'peak MiB':>9}" if device.type == "cuda" else ""))
        results = []
        for name in names:
            r = time_config(name, CONFIGS[name], args, device)
            results.append(r)
            print(f"{name:<10} {r['batch']:>5} {r['step_s']:>9.3f} {r['samples_per_s']:>10.1f}"
                  + (f" {r['peak_mib']:>9.0f}" if r["peak_mib"] is not None else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
