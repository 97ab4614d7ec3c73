"""Side by side with the Python stack: `tinyzero-train bench` against hf_phases.py (HF transformers)
on the same weights, prompts, lengths, batch sizes, precisions and thread count, in alternating A/B
rounds; optionally the whole GRPO step and the 20-step learning curve against TRL (grpo.py).

Writes one JSON per run (out/peers-<time>.json: every round's figures, each ratio's median and
spread, machine, versions, command), then report.py turns it into the README table and the plot.
A ratio is peer time / our time: above 1, we are faster.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from grpo import timed  # noqa: E402  (waits for a quiet machine; reports others' CPU time during a run)


def log(msg):
    print(f"[peers {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(shlex.quote(c) for c in cmd))
    subprocess.run(cmd, check=True, cwd=ROOT, **kw)


def machine(device):
    gpu = ""
    if device == "cuda":
        q = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                           text=True)
        gpu = q.stdout.strip().splitlines()[0] if q.returncode == 0 and q.stdout.strip() else "unknown GPU"
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(), **({"gpu": gpu} if gpu else {})}


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return -1.0


def record_key(r):
    if r["phase"] == "decode":
        return f"decode B={r['batch']} {r['prompt_len']}+{r['new_tokens']} {r['precision']}"
    return f"{r['phase']} {r['batch']}x{r['seq_len']} {r['precision']}"


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def make_model(binary, shape):
    out = os.path.join(HERE, "out", "models", shape)
    if not os.path.exists(os.path.join(out, "model.safetensors")):
        run([binary, "init", "--model-config", f"configs/models/{shape}.json", "--out", out, "--seed", "1"])
    return out


def phase_rounds(args, binary, shape, model_dir):
    """Alternating rounds of both sides on one shape; returns {key: comparison}."""
    common = ["--threads", str(args.threads), "--batch", args.batch, "--prompt-len", str(args.prompt_len),
              "--new-tokens", str(args.new_tokens), "--reps", str(args.reps), "--train-batch",
              str(args.train_batch), "--seq-len", str(args.seq_len), "--train-reps", str(args.train_reps),
              "--precision", args.precision, "--device", args.device]
    phases = args.phases.split(",")
    rounds_dir = os.path.join(HERE, "out", "rounds")
    os.makedirs(rounds_dir, exist_ok=True)
    per_round = []
    for r in range(args.rounds):
        sides = ["ours", "peer"] if r % 2 == 0 else ["peer", "ours"]
        for attempt in range(args.retry_contended + 1):
            figures, contended = {}, False
            for side in sides:
                path = os.path.join(rounds_dir, f"{shape}-{r}-{side}.json")
                if side == "ours":
                    cmd = [binary, "bench", *phases, "--model", model_dir, *common, "--json", path]
                else:
                    cmd = [args.peer_python, os.path.join(HERE, "hf_phases.py"), *phases, "--model", model_dir,
                           *common, "--train-precision", args.precision, "--json", path]
                log(f"{shape} round {r + 1}/{args.rounds}, {side}: " + " ".join(shlex.quote(c) for c in cmd))
                info = timed(cmd, dict(os.environ, OMP_NUM_THREADS=str(args.threads)), path + ".log",
                             args.max_wait)
                contended = contended or info["contended"]
                with open(path) as f:
                    figures[side] = {record_key(x): x for x in json.load(f)["results"]}
                figures[side + "_run"] = info
            if not contended:
                break
            log(f"{shape} round {r + 1}: another process took CPU time during it"
                + ("; running it again" if attempt < args.retry_contended else "; kept, marked contended"))
        per_round.append(figures)
    out = {}
    for key in per_round[0]["ours"]:
        if key not in per_round[0]["peer"]:
            continue
        ours = [fr["ours"][key]["seconds"] for fr in per_round]
        peer = [fr["peer"][key]["seconds"] for fr in per_round]
        rec = per_round[0]["ours"][key]
        out[key] = {"phase": rec["phase"], "precision": rec["precision"], "batch": rec["batch"],
                    "ours_s": ours, "peer_s": peer,
                    "ours_tokens_per_s": statistics.median(fr["ours"][key]["tokens_per_s"] for fr in per_round),
                    "peer_tokens_per_s": statistics.median(fr["peer"][key]["tokens_per_s"] for fr in per_round),
                    "ratio": spread([p / o for p, o in zip(peer, ours)]),
                    "contended_rounds": sum(fr["ours_run"]["contended"] or fr["peer_run"]["contended"]
                                            for fr in per_round)}
    return out


def versions(binary, peer_python):
    v = {"tinyzero": subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.splitlines()[0]}
    code = ("import importlib.util, torch, transformers\n"
            "trl = __import__('trl').__version__ if importlib.util.find_spec('trl') else 'absent'\n"
            "print(torch.__version__, transformers.__version__, trl)")
    t, hf, trl = subprocess.run([peer_python, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split()
    v.update({"torch": t, "transformers": hf, "trl": trl})
    return v


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", default="tiny,small", help="configs/models/<shape>.json, comma-separated")
    p.add_argument("--rounds", type=int, default=5, help="A/B rounds per shape (order alternates)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu | cuda (both sides)")
    p.add_argument("--precision", default="fp32,bf16", help="fp32 and/or bf16 (autocast), every phase")
    p.add_argument("--phases", default="decode,logprob,train")
    p.add_argument("--batch", default="16,64", help="decode batch sizes")
    p.add_argument("--prompt-len", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--train-batch", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--train-reps", type=int, default=3)
    p.add_argument("--max-wait", type=float, default=1800, help="seconds to wait for a quiet machine")
    p.add_argument("--retry-contended", type=int, default=2, help="reruns of a round others slowed")
    p.add_argument("--grpo", default="", help="also run grpo.py: step, curve or step,curve")
    p.add_argument("--grpo-shapes", default="tiny,small", help="shapes of the GRPO step comparison")
    p.add_argument("--grpo-results", nargs="*", default=[],
                   help="grpo.py JSONs of earlier runs to report with this one (e.g. the learning curves)")
    p.add_argument("--binary", default=os.path.join(ROOT, "build", "tinyzero-train"))
    p.add_argument("--peer-python", default=os.path.join(HERE, ".venv", "bin", "python"))
    p.add_argument("--out", default="", help="JSON to write (default out/peers-<time>.json)")
    args = p.parse_args()
    for path, what in [(args.binary, "build it: bash scripts/build.sh"),
                       (args.peer_python, "make it: bash bench/peers/setup.sh")]:
        if not os.access(path, os.X_OK):
            sys.exit(f"peers: {path} is missing; {what}")

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_path = args.out or os.path.join(HERE, "out", f"peers-{stamp}.json")
    result = {"kind": "peers", "date": stamp, "command": " ".join(shlex.quote(a) for a in sys.argv),
              "machine": machine(args.device), "device": args.device, "threads": args.threads, "versions": versions(args.binary, args.peer_python),
              "rounds": args.rounds, "params": {k: getattr(args, k) for k in (
                  "batch", "prompt_len", "new_tokens", "reps", "train_batch", "seq_len", "train_reps")},
              "load_average_start": load_average(), "shapes": {}, "grpo": []}
    for shape in [s for s in args.shapes.split(",") if s]:
        model_dir = make_model(args.binary, shape)
        result["shapes"][shape] = phase_rounds(args, args.binary, shape, model_dir)
    for mode in [m for m in args.grpo.split(",") if m]:
        shapes = [s for s in args.grpo_shapes.split(",") if s] if mode == "step" else ["tiny"]
        for shape in shapes:
            path = os.path.join(HERE, "out", f"grpo-{mode}-{shape}-{stamp}.json")
            extra = ["--rounds", str(args.rounds)] if mode == "step" else []
            run([args.peer_python, os.path.join(HERE, "grpo.py"), "--mode", mode, "--shape", shape, *extra,
                 "--threads", str(args.threads), "--binary", args.binary, "--max-wait", str(args.max_wait),
                 "--out", path])
            with open(path) as f:
                result["grpo"].append(json.load(f))
    for path in args.grpo_results:
        with open(path) as f:
            result["grpo"].append(dict(json.load(f), included_from=path))
    result["load_average_end"] = load_average()
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path + ".tmp", "w") as f:
        json.dump(result, f, indent=2)
    os.replace(out_path + ".tmp", out_path)
    log(f"wrote {out_path}")
    run([args.peer_python, os.path.join(HERE, "report.py"), out_path])


if __name__ == "__main__":
    main()
