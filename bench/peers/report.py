"""Turns a peer bench JSON (run.py's out/peers-<time>.json) into the README's performance table
(markdown: each ratio's median and spread, the goal, machine, versions, command) and, when the run
has the GRPO learning curves, a plot of both stacks' reward curves (SVG).

  report.py RESULT.json                 prints the table, writes RESULT.md (+ RESULT-curve.svg)
  report.py RESULT.json --readme        also replaces the block between the README's peer markers
  report.py RESULT.json --plot FILE     the plot goes to FILE instead
"""

import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BEGIN, END = "<!-- peers:begin (bench/peers/report.py --readme) -->", "<!-- peers:end -->"

# The goals (peer time over ours) by phase; decode's is for batch 64.
GOALS = {("decode", 64): 3.0, ("logprob", None): 1.5, ("train", None): 1.5}


def rows(shape_results):
    """(phase, batch or None, goal) in table order: decode by batch size, then logprob and train."""
    batches = sorted({r["batch"] for r in shape_results.values() if r["phase"] == "decode"})
    out = [("decode", b, GOALS.get(("decode", b))) for b in batches]
    return out + [(p, None, GOALS[(p, None)]) for p in ("logprob", "train")]


def fmt_ratio(r):
    return f"**{r['median']:.2f}x** ({r['min']:.2f}-{r['max']:.2f})"


def phase_cell(shape_results, phase, batch, precision):
    for rec in shape_results.values():
        if rec["phase"] == phase and rec["precision"] == precision and (batch is None or rec["batch"] == batch):
            return fmt_ratio(rec["ratio"])
    return "-"


def row_label(phase, batch, params):
    if phase == "decode":
        return f"decode B={batch}, {params['prompt_len']}+{params['new_tokens']} tokens"
    return f"{phase} {params['train_batch']}x{params['seq_len']}" + (" (+ backward, AdamW)" if phase == "train" else "")


def table(res):
    shapes = list(res["shapes"])
    head = "| phase (HF transformers / TRL time over ours) | " + " | ".join(
        f"{s} fp32 | {s} bf16" for s in shapes) + " | goal |"
    lines = [head, "|---" * (2 + 2 * len(shapes)) + "|"]
    first = res["shapes"][shapes[0]] if shapes else {}
    for phase, batch, goal in rows(first):
        if not any(r["phase"] == phase for r in first.values()):
            continue
        cells = []
        for s in shapes:
            for prec in ("fp32", "bf16-autocast"):
                cells.append(phase_cell(res["shapes"][s], phase, batch, prec))
        lines.append(f"| {row_label(phase, batch, res['params'])} | " + " | ".join(cells) +
                     f" | {'>= %.1fx' % goal if goal else ''} |")
    for g in res.get("grpo", []):
        if g.get("kind") != "grpo-step":
            continue
        c, t = g.get("config", {}), g.get("median_phase_s", {})
        label = (f"whole GRPO step vs TRL `GRPOTrainer` ({c.get('prompts_per_step', '?')} prompts x "
                 f"{c.get('samples_per_prompt', '?')}, <= {c.get('max_response_length', '?')} tokens)")
        detail = ""
        if t:
            detail = (f"; {t['ours']['step_s']:.2f} s vs {t['peer']['step_s']:.2f} s: generation "
                      f"{t['ours']['gen_s']:.2f} / {t['peer']['gen_s']:.2f}, update {t['ours']['update_s']:.2f} / "
                      f"{t['peer']['update_s']:.2f}")
        ours_version = g.get("binary", {}).get("version", "").splitlines()[:1]
        if ours_version and ours_version[0] != res["versions"]["tinyzero"]:
            detail += f" ({ours_version[0]}, an earlier run)"
        prec = "bf16" if g.get("precision") == "bf16-autocast" else "fp32"
        cells = []
        for s in shapes:
            for p in ("fp32", "bf16"):
                cells.append(fmt_ratio(g["ratio"]) + detail if g["shape"] == s and p == prec else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " | >= 3x |")
    m, v = res["machine"], res["versions"]
    where = (f"{m['cpu']}, {m['cores']} cores, {res['threads']} threads" if res.get("device", "cpu") == "cpu"
             else f"{res['device']} ({m.get('gpu', 'GPU')})")
    lines.append("")
    contended = max([r.get("contended_rounds", 0) for sh in res["shapes"].values() for r in sh.values()] + [0])
    note = f" ({contended} round(s) kept though another process took CPU time)" if contended else ""
    lines.append(f"Median of {res['rounds']} alternating rounds (min-max){note}; above 1x we are faster. "
                 f"{where}, load average "
                 f"{res['load_average_start']:.2f} -> {res['load_average_end']:.2f}; torch {v['torch']}, "
                 f"transformers {v['transformers']}, TRL {v['trl']}, {v['tinyzero']}; {res['date']}. "
                 f"Command: `{res['command']}`.")
    return "\n".join(lines)


def curve_summary(res):
    out = []
    for g in res.get("grpo", []):
        if g.get("kind") != "grpo-curve":
            continue
        ours, peer = g["ours"]["steps"], g["peer"]["steps"]
        def mean_last(steps, key, k=5):
            vals = [s[key] for s in steps[-k:] if s.get(key) is not None]
            return sum(vals) / len(vals) if vals else float("nan")
        def total(steps):
            return sum(s["step_s"] for s in steps)
        ours_version = g.get("binary", {}).get("version", "").splitlines()[:1]
        earlier = (f" ({ours_version[0]}, an earlier run)"
                   if ours_version and ours_version[0] != res["versions"]["tinyzero"] else "")
        out.append(f"Learning side by side{earlier} ({g['shape']}, {len(ours)} GRPO steps from the same warm model, "
                   f"the demo's config: 64 prompts x 8, <= 288 tokens; plot: docs/peers-curve.svg): "
                   f"reward mean over the last 5 steps {mean_last(ours, 'reward_mean'):.3f} (ours) vs "
                   f"{mean_last(peer, 'reward_mean'):.3f} (TRL), success {100 * mean_last(ours, 'success_rate'):.1f}% "
                   f"vs {100 * mean_last(peer, 'success_rate'):.1f}%; {total(ours) / 60:.1f} vs "
                   f"{total(peer) / 60:.1f} min of steps.")
    return "\n".join(out)


def plot(res, path):
    curves = [g for g in res.get("grpo", []) if g.get("kind") == "grpo-curve"]
    if not curves:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for g in curves:
        for side, label, style in (("ours", "tinyzero", "-"), ("peer", "TRL GRPOTrainer", "--")):
            steps = g[side]["steps"]
            x = [s["step"] for s in steps]
            axes[0].plot(x, [s["reward_mean"] for s in steps], style, label=f"{label} ({g['shape']})")
            axes[1].plot(x, [100 * s["success_rate"] for s in steps], style, label=f"{label} ({g['shape']})")
    axes[0].set(xlabel="GRPO step", ylabel="training reward (mean)", title="Reward")
    axes[1].set(xlabel="GRPO step", ylabel="training success (%)", title="Success")
    for a in axes:
        a.grid(alpha=0.3)
        a.legend()
    fig.suptitle(f"Same warm model, same hyper-parameters, {res['threads']} threads, {res['date']}")
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None})
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("result")
    p.add_argument("--readme", action="store_true", help="replace the README block between the markers")
    p.add_argument("--plot", default="", help="where the reward-curve SVG goes (default RESULT-curve.svg)")
    args = p.parse_args()
    with open(args.result) as f:
        res = json.load(f)
    text = table(res)
    summary = curve_summary(res)
    if summary:
        text += "\n\n" + summary
    base = os.path.splitext(args.result)[0]
    with open(base + ".md", "w") as f:
        f.write(text + "\n")
    print(text)
    plot_path = args.plot or base + "-curve.svg"
    if plot(res, plot_path):
        print(f"\nplot: {plot_path}")
    if args.readme:
        readme = os.path.join(ROOT, "README.md")
        with open(readme) as f:
            body = f.read()
        if BEGIN not in body or END not in body:
            sys.exit(f"report: README.md has no block between {BEGIN!r} and {END!r}")
        new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: f"{BEGIN}\n{text}\n{END}", body,
                     flags=re.S)
        with open(readme, "w") as f:
            f.write(new)
        print("updated README.md")


if __name__ == "__main__":
    main()
