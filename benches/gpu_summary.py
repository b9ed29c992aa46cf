"""Summary of a benches/gpu.sh run: reads the gadms runs' metrics.jsonl, the matrix-multiply
peak and the PyTorch-eager timings, prints a Markdown report (the rows benches/README.md
takes) and writes it with the numbers as summary.md and summary.json.

Step time is the median over the log windows (10 steps each) after the first, which holds
the start-up (CUDA context, cuBLAS handles, the loader filling its queue). MFU is the
analytical FLOPs of the step (runner/src/model/flops.rs, logged as `flops_per_step`) per
second over the measured bf16 matrix-multiply rate. The PyTorch rows are credited with the
same FLOPs per step: their extra work (the reference's MLM head over every position) is not
useful work.

The stage table holds each run's `stages` records (gadms-run under GADMS_PROFILE_STAGES=1):
the median over the epochs of each stage's per-epoch median, in milliseconds. That profile
syncs the device at every stage, so the rates above are of the synced step.
"""

import argparse
import json
import statistics
from pathlib import Path

GOAL_RATIO, GOAL_MFU = 1.3, 0.35


def run_stats(path):
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    train = sorted((r for r in records if r.get("kind") == "train"), key=lambda r: r["global_step"])
    if not train:
        return None
    windows, previous = [], 0
    for r in train:
        windows.append((r["global_step"] - previous, r))
        previous = r["global_step"]
    timed = windows[1:] or windows
    step_s = statistics.median(r["elapsed_s"] / n for n, r in timed)
    batch = round(statistics.median(r["samples_per_s"] * r["elapsed_s"] / n for n, r in timed))
    peaks = [r["gpu_peak_mib"] for r in train if "gpu_peak_mib" in r]
    stages = [r for r in records if r.get("kind") == "stages"]
    stage_ms = {k[: -len("_ms")]: statistics.median(r[k] for r in stages if k in r)
                for k in dict.fromkeys(k for r in stages for k in r if k.endswith("_ms"))}
    return {
        "steps": train[-1]["global_step"],
        "timed_windows": len(timed),
        "batch": batch,
        "step_s": step_s,
        "samples_per_s": batch / step_s,
        "flops_per_step": statistics.median(r["flops_per_step"] for _, r in timed),
        "data_wait_share": sum(r["data_wait_s"] for _, r in timed) / sum(r["elapsed_s"] for _, r in timed),
        "peak_mib": max(peaks) if peaks else None,
        "stage_ms": stage_ms,
    }


def stage_table(runs):
    """Markdown rows of the runs' stage medians (ms), one column per run that has them."""
    profiled = {name: r["stage_ms"] for name, r in runs.items() if r["stage_ms"]}
    if not profiled:
        return ["(no stage profile: the runs have no `stages` records)"]
    stages = list(dict.fromkeys(s for ms in profiled.values() for s in ms))
    rows = [
        "| stage (median ms) | " + " | ".join(profiled) + " |",
        "|---|" + "---|" * len(profiled),
    ]
    rows += [f"| {s} | " + " | ".join(fmt(ms.get(s), ".2f") for ms in profiled.values()) + " |" for s in stages]
    rows.append("| sum | " + " | ".join(fmt(sum(ms.values()), ".2f") for ms in profiled.values()) + " |")
    return rows


def fmt(value, spec):
    return "n/a" if value is None else format(value, spec)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, required=True, help="the experiment's runs/ folder")
    p.add_argument("--peak", type=Path, required=True, help="pytorch_step.py --matmul-peak output")
    p.add_argument("--pytorch", type=Path, nargs="*", default=[], help="pytorch_step.py --json files")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--failed", nargs="*", default=[], help="gpu.sh steps that failed")
    args = p.parse_args()

    peak = json.loads(args.peak.read_text()) if args.peak.exists() else {}
    peak_tflops = peak.get("tflop_per_s")
    runs = {}
    for metrics in sorted(args.runs.glob("*/seed-*/metrics.jsonl")):
        stats = run_stats(metrics)
        if stats:
            runs[metrics.parent.parent.name] = stats
    ours = runs.get("ga-dms")
    baselines = {}
    for f in args.pytorch:
        if f.exists():
            for r in json.loads(f.read_text()):
                baselines[r["algorithm"]] = r
    flops = ours["flops_per_step"] if ours else None

    def achieved(step_s):
        return None if flops is None or step_s is None else flops / step_s / 1e12

    def mfu(step_s):
        t = achieved(step_s)
        return None if t is None or not peak_tflops else t / peak_tflops

    columns = []
    if ours:
        columns.append(("gadms", ours["samples_per_s"], ours["step_s"], ours["peak_mib"]))
    for name, label in (("reference", "PyTorch eager (authors' algorithm)"), ("gadms", "PyTorch eager (gadms's algorithm)")):
        if name in baselines:
            b = baselines[name]
            columns.append((label, b["samples_per_s"], b["step_s"], b["peak_mib"]))
    reference = baselines.get("reference")
    ratio = ours["samples_per_s"] / reference["samples_per_s"] if ours and reference else None
    no_score = runs.get("no-score")
    score_share = (ours["step_s"] - no_score["step_s"]) / ours["step_s"] if ours and no_score else None

    lines = [
        f"# GPU benchmark: {peak.get('device_name', 'unknown device')}",
        "",
        f"torch {peak.get('torch', '?')}; {peak.get('dtype', '?')} matrix-multiply peak measured "
        f"{fmt(peak_tflops, '.4g')} TFLOP/s ({peak.get('n', '?')}³ products)."
        + (f" Batch {ours['batch']}, median of {ours['timed_windows']} windows after the first." if ours else ""),
        "",
        "| | " + " | ".join(c[0] for c in columns) + " |",
        "|---|" + "---|" * len(columns),
        "| samples/s | " + " | ".join(fmt(c[1], ".1f") for c in columns) + " |",
        "| step time (s) | " + " | ".join(fmt(c[2], ".4f") for c in columns) + " |",
        "| peak GPU memory (MiB, allocated) | " + " | ".join(fmt(c[3], ".0f") for c in columns) + " |",
        "| TFLOP/s (analytical) | " + " | ".join(fmt(achieved(c[2]), ".1f") for c in columns) + " |",
        "| MFU | " + " | ".join(fmt(None if mfu(c[2]) is None else 100 * mfu(c[2]), ".1f") + " %" for c in columns) + " |",
        "",
        f"- FLOPs per step (analytical, runner/src/model/flops.rs): {fmt(None if flops is None else flops / 1e12, '.2f')} TFLOP",
        f"- throughput vs the PyTorch-eager baseline: {fmt(ratio, '.2f')}× (goal ≥ {GOAL_RATIO}×: "
        + ("met" if ratio is not None and ratio >= GOAL_RATIO else "not met") + ")",
        f"- MFU: {fmt(None if ours is None or mfu(ours['step_s']) is None else 100 * mfu(ours['step_s']), '.1f')} % "
        f"(goal ≥ {100 * GOAL_MFU:.0f} %: "
        + ("met" if ours and mfu(ours["step_s"]) is not None and mfu(ours["step_s"]) >= GOAL_MFU else "not met") + ")",
        f"- score's share of the step (vs the same run without scoring): {fmt(None if score_share is None else 100 * score_share, '.1f')} %",
        f"- the step waited for data {fmt(None if ours is None else 100 * ours['data_wait_share'], '.2f')} % of the time",
        "- steps that failed: " + (", ".join(args.failed) if args.failed else "none (golden parity passed)"),
        "",
        "Stages of the step (GADMS_PROFILE_STAGES=1: the device synced at each stage; median over epochs):",
        "",
        *stage_table(runs),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text(text)
    summary = {"peak": peak, "runs": runs, "pytorch": baselines, "ratio_vs_reference": ratio,
               "mfu": None if ours is None else mfu(ours["step_s"]), "score_share": score_share,
               "failed": args.failed}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
