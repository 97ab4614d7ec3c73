"""Peer bench, whole GRPO steps: tinyzero-train beside TRL's GRPOTrainer (bench/peers/trl_grpo.py) on the
same CPU threads, precision, model, problems, reward and hyper-parameters (issue #25).

    bench/peers/.venv/bin/python bench/peers/grpo.py --shape tiny --mode step --rounds 5 \\
        --out bench/peers/out/grpo-step-tiny.json
    bench/peers/.venv/bin/python bench/peers/grpo.py --shape tiny --mode curve \\
        --out bench/peers/out/grpo-curve-tiny.json

--mode step   A/B rounds, the order alternating (ours first in even rounds, TRL first in odd ones); each
              round is a fresh run of --steps steps per side on a smaller batch (--prompts x --n, responses
              up to --max-response-length; the same for both), of which the last step is reported (the
              first includes warm-up): step time split by phase and the ratio TRL / ours, then the median,
              min and max of the ratio over the rounds.
--mode curve  --steps (20) steps of configs/tiny/grpo.yaml (64 prompts x 8, 288 tokens, 8 optimizer
              steps per rollout) on both stacks from the same model: reward, success rate and step time
              per step. --peer-steps runs fewer TRL steps where TRL is too slow for the time at hand.

Shapes: tiny = tests/data/tiny-demo-warm (the demo's warmed-up model); small = a random model of
configs/models/small.json (tinyzero-train init, with the tiny model's tokenizer: vocab 2048 > the
tokenizer's 333 ids; both stacks decode unknown ids to nothing).

Both sides read the same problem file (tinyzero-train data countdown with the config's ranges and
data.seed 0, as the trainer generates them) in file order (data.shuffle=false / shuffle_dataset=False),
so step k samples the same prompts on both. Before any timing, the Python port of the reward
(countdown_reward.py) is checked against `tinyzero-train score` on sampled completions plus mutations
and hand-made edge cases; a disagreement stops the bench. Each timed run waits for the machine to be
quiet (no other process using CPU) and records the CPU time other processes took while it ran; step
mode runs a round again (--retry-contended) when another process took CPU time during it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from countdown_reward import score_countdown  # noqa: E402

BINARY = os.path.join(ROOT, "build", "tinyzero-train")
CONFIG = os.path.join(ROOT, "configs", "tiny", "grpo.yaml")
TINY_MODEL = os.path.join(ROOT, "tests", "data", "tiny-demo-warm")
SMALL_CONFIG = os.path.join(ROOT, "configs", "models", "small.json")
PROMPT_TEMPLATE = "Numbers {numbers}, target {target}.\nAssistant: <think>"
# data.countdown of configs/tiny/grpo.yaml
RANGES = {"min-numbers": 3, "max-numbers": 3, "min-number": 1, "max-number": 9, "min-target": 1, "max-target": 50}
KEYS = ["step", "step_s", "gen_s", "ref_s", "old_log_prob_s", "update_s", "other_s", "reward_mean", "success_rate",
        "format_rate", "response_length_mean", "lr"]


def log(msg):
    print(f"[grpo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- other processes' CPU use (the machine has 2 cores: a second timed job slows both) --------------------

def _proc_table():
    table = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        rparen = stat.rfind(")")
        fields = stat[rparen + 2:].split()
        table[int(pid)] = (int(fields[1]), int(fields[11]) + int(fields[12]), stat[stat.find("(") + 1:rparen])
    return table  # pid -> (ppid, utime + stime ticks, comm)


def _ours(pid, table, me):
    while pid > 1:
        if pid == me:
            return True
        pid = table.get(pid, (0,))[0]
    return False


def others_ticks():
    """Cumulative CPU ticks of the processes outside this process's tree, by pid."""
    table, me = _proc_table(), os.getpid()
    return {pid: (ticks, comm) for pid, (ppid, ticks, comm) in table.items() if not _ours(pid, table, me)}


def others_cpu_s(before, after):
    hz = os.sysconf("SC_CLK_TCK")
    used = {pid: (after[pid][0] - before.get(pid, (0,))[0]) / hz for pid in after}
    return sum(used.values()), sorted(((round(s, 1), after[p][1]) for p, s in used.items() if s > 0.5),
                                      reverse=True)[:3]


def wait_quiet(max_wait_s, window_s=3.0, threshold=0.15):
    """Waits until other processes use under `threshold` of a core; returns the seconds waited."""
    start = time.time()
    while True:
        before, busy0, own0 = others_ticks(), _busy_s(), _own_s()
        time.sleep(window_s)
        cpu = max(0.0, (_busy_s() - busy0) - (_own_s() - own0))
        _, top = others_cpu_s(before, others_ticks())
        if cpu / window_s < threshold:
            return time.time() - start
        if time.time() - start > max_wait_s:
            log(f"machine still busy after {max_wait_s:.0f} s ({top}); going on (the run is marked contended)")
            return time.time() - start
        log(f"waiting for a quiet machine: others use {cpu / window_s:.2f} cores ({top})")
        time.sleep(15)


def _busy_s():
    """Machine-wide busy CPU seconds (all cores) since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_s():
    import resource
    c, s = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    return c.ru_utime + c.ru_stime + s.ru_utime + s.ru_stime


def timed(cmd, env, log_path, max_wait_s):
    """Runs cmd after waiting for a quiet machine. Other processes' CPU time during the run is the
    machine's busy time less this process's and its (waited-for) children's: it counts short-lived
    processes too, which a before/after look at /proc/PID would miss."""
    waited = wait_quiet(max_wait_s)
    busy0, own0, before = _busy_s(), _own_s(), others_ticks()
    t = time.perf_counter()
    with open(log_path, "w") as f:
        proc = subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    wall = time.perf_counter() - t
    others = max(0.0, (_busy_s() - busy0) - (_own_s() - own0))
    _, top = others_cpu_s(before, others_ticks())
    if proc.returncode != 0:
        with open(log_path) as f:
            tail = f.read()[-3000:]
        sys.exit(f"grpo: command failed ({proc.returncode}): {' '.join(cmd)}\n--- {log_path} (tail) ---\n{tail}")
    # Under 5% of a core on average (kernel threads, interrupts) counts as quiet.
    return {"wall_s": wall, "waited_quiet_s": waited, "others_cpu_s": others, "others_top": top,
            "contended": others / max(wall, 1e-9) > 0.05}


# --- the two sides -----------------------------------------------------------------------------------

def binary_id():
    """sha256 (16 hex) of tinyzero-train: a rebuild during a bench shows up as a changed id."""
    import hashlib
    with open(BINARY, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def ours_cmd(a, model, data, run_dir, steps, prompts, response_len):
    return [BINARY, "--config", CONFIG, f"model.path={model}", f"trainer.run_dir={run_dir}",
            f"trainer.total_steps={steps}", "trainer.test_freq=0", "trainer.val_before_train=false",
            "trainer.save_freq=0", f"trainer.threads={a.threads}", f"trainer.seed={a.seed}",
            f"data.train_files={data}/train.jsonl", f"data.val_files={data}/test.jsonl", "data.shuffle=false",
            f"data.train_batch_size={prompts}", f"data.max_response_length={response_len}", f"rollout.n={a.n}",
            f"actor.ppo_mini_batch_size={a.mini_batch_prompts}", f"actor.ppo_micro_batch_size={a.micro_batch}",
            f"actor.optim.lr={a.lr}", f"actor.optim.warmup_steps={a.warmup_steps}", f"actor.kl_loss_coef={a.beta}",
            f"actor.clip_ratio_low={a.clip}", f"actor.clip_ratio_high={a.clip}",
            "logging.tensorboard=false", "logging.plot=false", "logging.progress=false", "logging.sample_freq=0"]


def run_ours(a, model, data, work, tag, steps, prompts, response_len, precision):
    run_dir = os.path.join(work, f"ours-{tag}")
    shutil.rmtree(run_dir, ignore_errors=True)
    log_path = run_dir + ".log"
    cmd = ours_cmd(a, model, data, run_dir, steps, prompts, response_len)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    bin_before = binary_id()
    info = timed(cmd, env, log_path, a.max_wait)
    info["binary"] = binary_id()
    if info["binary"] != bin_before or info["binary"] != a.binary_id:
        sys.exit(f"grpo: {BINARY} changed during the bench (sha {a.binary_id} at the start, {bin_before} -> "
                 f"{info['binary']} around this run); rerun once nobody is rebuilding it")
    text = open(log_path).read()
    resolved = "on" if "bf16 autocast on" in text else "off" if "bf16 autocast off" in text else None
    if resolved != precision:
        sys.exit(f"grpo: our run resolved bf16 autocast to {resolved}, the bench assumed {precision} ({log_path})")
    steps_out = []
    for line in open(os.path.join(run_dir, "metrics.jsonl")):
        m = json.loads(line)
        if "timing_s/step" not in m:
            continue
        rec = {"step": m["step"], "step_s": m["timing_s/step"], "gen_s": m["timing_s/gen"],
               "ref_s": m.get("timing_s/ref", 0.0), "old_log_prob_s": m.get("timing_s/old_log_prob", 0.0),
               "update_s": m["timing_s/update_actor"], "reward_mean": m["critic/score/mean"],
               "success_rate": m["reward/success_rate"], "format_rate": m["reward/format_rate"],
               "response_length_mean": m["response_length/mean"], "lr": m.get("actor/lr")}
        rec["other_s"] = rec["step_s"] - rec["gen_s"] - rec["ref_s"] - rec["old_log_prob_s"] - rec["update_s"]
        steps_out.append(rec)
    if len(steps_out) != steps:
        sys.exit(f"grpo: {run_dir}/metrics.jsonl has {len(steps_out)} steps, {steps} expected")
    shutil.rmtree(os.path.join(run_dir, "checkpoints"), ignore_errors=True)  # the final save; not needed
    return steps_out, dict(info, command=" ".join(cmd), log=log_path)


def run_peer(a, model, data, work, tag, steps, prompts, response_len, precision, time_limit=0):
    out = os.path.join(work, f"peer-{tag}.jsonl")
    log_path = os.path.join(work, f"peer-{tag}.log")
    cmd = [sys.executable, os.path.join(HERE, "trl_grpo.py"), "--model", model, "--problems",
           f"{data}/train.jsonl", "--out", out, "--steps", str(steps), "--prompts", str(prompts), "--n", str(a.n),
           "--mini-batch-prompts", str(a.mini_batch_prompts), "--micro-batch", str(a.micro_batch),
           "--max-response-length", str(response_len), "--lr", str(a.lr), "--warmup-steps", str(a.warmup_steps),
           "--beta", str(a.beta), "--clip", str(a.clip), "--bf16", precision, "--threads", str(a.threads),
           "--seed", str(a.seed), "--prompt-template", PROMPT_TEMPLATE, "--stop", "</answer>",
           "--time-limit", str(time_limit)]
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), TOKENIZERS_PARALLELISM="false")
    info = timed(cmd, env, log_path, a.max_wait)
    steps_out = [json.loads(line) for line in open(out)]
    with open(out + ".meta.json") as f:
        meta = json.load(f)
    for r in steps_out:
        want = ["bfloat16"] if precision == "on" else ["float32"]
        if r.get("gen_dtypes") != want:
            sys.exit(f"grpo: TRL generated in {r.get('gen_dtypes')}, expected {want} ({log_path})")
    return steps_out, dict(info, command=" ".join(cmd), log=log_path, meta=meta)


# --- set-up ------------------------------------------------------------------------------------------

def cpu_precision():
    """What model.autocast_bf16=auto resolves to on this CPU (checked against each of our runs' log)."""
    flags = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = line
                break
    return "on" if (" avx512_bf16" in flags or " amx_bf16" in flags) else "off"


def cpu_name():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def make_data(work, train_size):
    data = os.path.join(work, "data")
    args = [BINARY, "data", "countdown", "--train", str(train_size), "--test", "500", "--seed", "0", "--out", data]
    for k, v in RANGES.items():
        args += [f"--{k}", str(v)]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return data


def make_model(a):
    if a.shape == "tiny":
        return TINY_MODEL
    model = os.path.join(HERE, "out", "models", "small-grpo")
    if not os.path.exists(os.path.join(model, "config.json")):
        subprocess.run([BINARY, "init", "--model-config", SMALL_CONFIG, "--out", model, "--tokenizer", TINY_MODEL,
                        "--seed", "0"], check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    # TRL's side must load, generate from and decode the random model (vocab 2048 > the tokenizer's ids).
    check = ("import torch, sys; from transformers import AutoModelForCausalLM, AutoTokenizer; "
             "m = AutoModelForCausalLM.from_pretrained(sys.argv[1]); t = AutoTokenizer.from_pretrained(sys.argv[1]); "
             "x = t(['Numbers [1, 2, 3], target 6.\\nAssistant: <think>'], return_tensors='pt'); "
             "y = m.generate(**x, max_new_tokens=16, do_sample=True, stop_strings=['</answer>'], tokenizer=t, "
             "pad_token_id=t.pad_token_id); "
             "print(m.config.vocab_size, len(t), y.shape[1] - x['input_ids'].shape[1], repr(t.decode(y[0])))")
    out = subprocess.run([sys.executable, "-c", check, model], check=True, capture_output=True, text=True)
    log(f"small model {model}: HF generate + decode ok (vocab, tokenizer ids, new tokens, text): {out.stdout.strip()}")
    return model


# --- the reward check ---------------------------------------------------------------------------------

def _solutions(nums, target):
    """A few correct expressions (brute force over orders, operators and the two bracketings)."""
    from fractions import Fraction
    ops = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
           "/": lambda x, y: x / y if y != 0 else None}
    out = []
    for a, b, c in itertools.permutations(nums):
        for o1, o2 in itertools.product("+-*/", repeat=2):
            fa, fb, fc = Fraction(a), Fraction(b), Fraction(c)
            left = ops[o1](fa, fb)
            if left is not None and ops[o2](left, fc) == target:
                out.append(f"({a} {o1} {b}) {o2} {c}")
            right = ops[o2](fb, fc)
            if right is not None and ops[o1](fa, right) == target:
                out.append(f"{a} {o1} ({b} {o2} {c})")
    return out


def _edge_cases():
    p = "Numbers [3, 4, 6], target 18.\nAssistant: <think> 3*4=12: 12+6=18 </think> "
    eqs = ["3*4+6", "(6-3)*4+6", "6*3", "3 * (4 + 6) - 12", "6/3*4+6", "6 // 3 * 4", "4+6+3 ", "06*3*4", "00+3*4+6",
           "3.*4+6", ".5*3*4", "(3)(4)+6", "()", "...", "3*4+6\u00a0", "3\u00a04+6", "3*4+\u0666", "\u0663*4+6",
           "3*4+6=18", "3*4*6/0", "3**4**6", "(6-4)**-3", "(-6)**(1/3)+4+3", "6*3\t+ 4 -4", "3*4\x0c+6", "3*4\x0b+6",
           "--3*4+6", "+3*4++6", "3*4+6.0", "3 4 6", "(((3*4)+6))", "4*3+6)", "3*4+6\r", "3_4+6", "-(-(-3))*-4+6",
           "6*(4-3)*3", "3*4+6<|endoftext|>", "3*<|im_end|>4+6", "4*6-3-3", "(4*6-6)*3/3"]
    rows = []
    for e in eqs:
        for tail in ("", "<|endoftext|>", "\n", " <answer>3*4+6</answer>", "\n<answer>3*4+6</answer>"):
            rows.append({"text": p + "<answer>" + e + "</answer>" + tail, "target": 18, "nums": [3, 4, 6]})
    t = "Numbers [9, 9, 9], target 18.\nAssistant: <think>"
    rows += [
        {"text": p + "<answer>3*4\n+6</answer>", "target": 18, "nums": [3, 4, 6]},
        {"text": "no marker <answer>3*4+6</answer>", "target": 18, "nums": [3, 4, 6]},
        {"text": "<|im_start|>assistant\n<answer>3*4+6</answer>", "target": 18, "nums": [3, 4, 6]},
        {"text": "x Assistant: a\nAssistant: <answer>3*4+6</answer>", "target": 18, "nums": [3, 4, 6]},
        {"text": p + "<answer>" + "-" * 3000 + "3*4+6</answer>", "target": 18, "nums": [3, 4, 6]},
        {"text": p + "<answer>" + "(" * 199 + "3*4+6" + ")" * 199 + "</answer>", "target": 18, "nums": [3, 4, 6]},
        {"text": p + "<answer>" + "(" * 201 + "3*4+6" + ")" * 201 + "</answer>", "target": 18, "nums": [3, 4, 6]},
        {"text": t + "<answer>9**9**9</answer>", "target": 18, "nums": [9, 9, 9]},
        {"text": t + "<answer>9+9+9-9</answer>", "target": 18, "nums": [9, 9, 9]},
        {"text": t + "<answer>9+9*9/9</answer>", "target": 18, "nums": [9, 9, 9]},
        {"text": p + "<answer>" + "1" * 5000 + "</answer>", "target": 18, "nums": [3, 4, 6]},
        {"text": p + "<answer></answer>", "target": 18, "nums": [3, 4, 6]},
        {"text": p + "<answer> </answer>", "target": 18, "nums": [3, 4, 6]},
    ]
    return rows


def reward_check(a, work):
    """Scores sampled completions (+ mutations and edge cases) with the port and with our scorer."""
    problems = [json.loads(line) for line in open(os.path.join(work, "data", "test.jsonl"))][: a.check_prompts]
    prompts = [PROMPT_TEMPLATE.replace("{numbers}", str(p["nums"])).replace("{target}", str(p["target"]))
               for p in problems]
    gen_in = os.path.join(work, "check-prompts.json")
    with open(gen_in, "w") as f:
        json.dump({"prompts": prompts}, f)
    gen = subprocess.run([BINARY, "generate", "--model", TINY_MODEL, "--input", gen_in, "--num-samples",
                          str(a.check_samples), "--max-new-tokens", "288", "--stop", "</answer>", "--seed", "7",
                          "--threads", str(a.threads)], check=True, capture_output=True, text=True, cwd=ROOT)
    texts = json.loads(gen.stdout)["text"]
    rng = random.Random(0)
    rows, sampled = [], 0
    for i, resp in enumerate(texts):
        p = problems[i // a.check_samples]
        base = {"target": p["target"], "nums": p["nums"]}
        full = prompts[i // a.check_samples] + resp
        rows.append(dict(base, text=full))
        sampled += 1
        if i % a.check_samples == 0:  # mutations of one completion per prompt
            head = full[: full.rfind("<answer>")] if "<answer>" in full else full + " "
            for s in _solutions(p["nums"], p["target"])[:2]:
                rows.append(dict(base, text=head + f"<answer>{s}</answer><|endoftext|>"))
                rows.append(dict(base, text=head + f"<answer> {s.replace(' ', '')} </answer>\n"))
            rows.append(dict(base, text=full.replace("</answer>", "</answer>\n")))
            rows.append(dict(base, text=full.replace("<answer>", "<answer>(", 1)))
            digits = [c for c in full[full.rfind("<answer>"):] if c.isdigit()]
            if digits:
                d = rng.choice(digits)
                rows.append(dict(base, text=full[::-1].replace(d, str((int(d) + 1) % 10), 1)[::-1]))
    rows += _edge_cases()
    path = os.path.join(work, "reward-check.jsonl")
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    scored = path + ".scored"
    subprocess.run([BINARY, "score", "--input", path, "--output", scored], check=True, capture_output=True, cwd=ROOT)
    agree, bad, hist = 0, [], {}
    for line in open(scored):
        r = json.loads(line)
        py = score_countdown(r["text"], r["target"], r["nums"])
        hist[str(r["score"])] = hist.get(str(r["score"]), 0) + 1
        if abs(py - r["score"]) < 1e-12:
            agree += 1
        else:
            bad.append({"text": r["text"][-200:], "ours": r["score"], "python": py})
    result = {"completions": len(rows), "agree": agree, "sampled": sampled, "edge_and_mutated": len(rows) - sampled,
              "ours_scores": hist}
    log(f"reward check: {agree}/{len(rows)} agree ({sampled} sampled from the warm model, "
        f"{len(rows) - sampled} mutations and edge cases; our scores {hist})")
    if bad:
        for b in bad[:10]:
            print("DISAGREE", json.dumps(b, ensure_ascii=False), file=sys.stderr)
        sys.exit(f"grpo: the Python reward disagrees with tinyzero-train score on {len(bad)} of {len(rows)} "
                 "completions; fix bench/peers/countdown_reward.py before comparing")
    return result


# --- modes ----------------------------------------------------------------------------------------------

def phase_ratios(peer, ours):
    return {k: (peer[k] / ours[k] if ours[k] > 1e-3 else None)
            for k in ("step_s", "gen_s", "ref_s", "old_log_prob_s", "update_s")}


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def pick(rec):
    return {k: rec.get(k) for k in KEYS}


def run_round(a, model, data, work, precision, r, order):
    res = {}
    for side in order:
        fn = run_ours if side == "ours" else run_peer
        log(f"round {r + 1}/{a.rounds}: {side} ({a.steps} steps of {a.prompts}x{a.n}, {a.max_response_length} tokens)")
        steps, info = fn(a, model, data, work, f"step-{a.shape}-r{r}", a.steps, a.prompts, a.max_response_length,
                         precision)
        res[side] = (steps, info)
        last = steps[-1]
        log(f"  {side}: last step {last['step_s']:.2f} s (gen {last['gen_s']:.2f}, ref {last['ref_s']:.2f}, "
            f"old {last['old_log_prob_s']:.2f}, update {last['update_s']:.2f}); run {info['wall_s']:.1f} s"
            + (f"; CONTENDED: others used {info['others_cpu_s']:.1f} CPU s {info['others_top']}"
               if info["contended"] else ""))
    return res


def mode_step(a, model, data, work, precision):
    rounds = []
    for r in range(a.rounds):
        order = ["ours", "peer"] if r % 2 == 0 else ["peer", "ours"]
        for attempt in range(a.retry_contended + 1):
            res = run_round(a, model, data, work, precision, r, order)
            if not any(info["contended"] for _, info in res.values()):
                break
            if attempt < a.retry_contended:
                log(f"round {r + 1}: another process took CPU time during it; running it again")
        ours, peer = res["ours"][0][-1], res["peer"][0][-1]
        rounds.append({
            "round": r, "order": f"{order[0]}-first", "attempts": attempt + 1, "ours": pick(ours), "peer": pick(peer),
            "ratio": peer["step_s"] / ours["step_s"], "phase_ratio": phase_ratios(peer, ours),
            "ours_steps": [pick(s) for s in res["ours"][0]], "peer_steps": [pick(s) for s in res["peer"][0]],
            "ours_run": {k: v for k, v in res["ours"][1].items() if k != "command"},
            "peer_run": {k: v for k, v in res["peer"][1].items() if k not in ("command", "meta")},
        })
        log(f"round {r + 1}: TRL/ours = {rounds[-1]['ratio']:.2f}")
    return dict(summarize_rounds(rounds), rounds=rounds, ours_command=res["ours"][1]["command"],
                peer_command=res["peer"][1]["command"], peer_meta=res["peer"][1]["meta"])


def summarize_rounds(rounds):
    """Ratio and phase summaries over the rounds in which no other process took CPU time (all rounds if
    none was quiet); the contended ones stay in "rounds", flagged, and are summarized apart."""
    quiet = [x for x in rounds if not (x["ours_run"]["contended"] or x["peer_run"]["contended"])]
    used = quiet or rounds

    def summary(sel):
        phases = {}
        for k in ("gen_s", "ref_s", "old_log_prob_s", "update_s"):
            vals = [x["phase_ratio"][k] for x in sel if x["phase_ratio"][k] is not None]
            phases[k] = spread(vals) if vals else None
        medians = {side: {k: statistics.median(x[side][k] for x in sel)
                          for k in ("step_s", "gen_s", "ref_s", "old_log_prob_s", "update_s", "other_s")}
                   for side in ("ours", "peer")}
        return {"ratio": spread([x["ratio"] for x in sel]), "phase_ratio": phases, "median_phase_s": medians}

    out = summary(used)
    out["ratio_over"] = "quiet rounds" if quiet else "all rounds (none was quiet)"
    out["quiet_rounds"] = [x["round"] for x in quiet]
    out["contended_rounds"] = [x["round"] for x in rounds if x not in quiet]
    out["all_rounds"] = summary(rounds)
    return out


def summarize_curve(steps):
    def mean(key, part):
        vals = [s[key] for s in part]
        return sum(vals) / len(vals) if vals else None
    first, last = steps[:5], steps[-5:]
    return {"steps": len(steps), "reward_first5": mean("reward_mean", first), "reward_last5": mean("reward_mean", last),
            "success_first5": mean("success_rate", first), "success_last5": mean("success_rate", last),
            "length_first5": mean("response_length_mean", first), "length_last5": mean("response_length_mean", last),
            "step_s_median": statistics.median(s["step_s"] for s in steps)}


def mode_curve(a, model, data, work, precision):
    log(f"curve: ours, {a.steps} steps of {a.prompts}x{a.n}, {a.max_response_length} tokens")
    ours, ours_info = run_ours(a, model, data, work, f"curve-{a.shape}", a.steps, a.prompts, a.max_response_length,
                               precision)
    log(f"  ours: {ours_info['wall_s']:.0f} s; " + json.dumps(summarize_curve(ours)))
    peer_steps = a.peer_steps or a.steps
    log(f"curve: TRL, {peer_steps} steps (progress: {work}/peer-curve-{a.shape}.jsonl)")
    peer, peer_info = run_peer(a, model, data, work, f"curve-{a.shape}", peer_steps, a.prompts,
                               a.max_response_length, precision, a.peer_time_limit)
    if len(peer) < peer_steps:
        log(f"  TRL stopped by --peer-time-limit {a.peer_time_limit:.0f} s after {len(peer)} of {peer_steps} steps")
    log(f"  TRL: {peer_info['wall_s']:.0f} s; " + json.dumps(summarize_curve(peer)))
    n = min(len(ours), len(peer))
    return {
        "ours": {"steps": [pick(s) for s in ours], "summary": summarize_curve(ours),
                 "run": {k: v for k, v in ours_info.items() if k != "command"}, "command": ours_info["command"]},
        "peer": {"steps": [pick(s) for s in peer], "summary": summarize_curve(peer),
                 "run": {k: v for k, v in peer_info.items() if k not in ("command", "meta")},
                 "command": peer_info["command"], "meta": peer_info["meta"]},
        "step_ratio_common_steps": spread([peer[i]["step_s"] / ours[i]["step_s"] for i in range(n)]),
        "summary_common_steps": {"ours": summarize_curve(ours[:n]), "peer": summarize_curve(peer[:n])},
    }


def main():
    global BINARY
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shape", choices=["tiny", "small"], default="tiny")
    p.add_argument("--mode", choices=["step", "curve"], required=True)
    p.add_argument("--out", required=True, help="result JSON")
    p.add_argument("--rounds", type=int, default=5, help="step mode: A/B rounds")
    p.add_argument("--steps", type=int, default=None, help="steps per run (step: 2, curve: 20)")
    p.add_argument("--peer-steps", type=int, default=None, help="curve: TRL steps (default --steps)")
    p.add_argument("--peer-time-limit", type=float, default=0,
                   help="curve: stop TRL after the step that ends past this many seconds (0 = none)")
    p.add_argument("--prompts", type=int, default=None, help="prompts per step (step: 16, curve: 64)")
    p.add_argument("--n", type=int, default=8, help="samples per prompt")
    p.add_argument("--max-response-length", type=int, default=None, help="step: 128, curve: 288")
    p.add_argument("--mini-batch-prompts", type=int, default=8, help="prompts per optimizer step")
    p.add_argument("--micro-batch", type=int, default=16, help="sequences per forward/backward")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--warmup-steps", type=int, default=3)
    p.add_argument("--beta", type=float, default=0.2, help="KL loss coefficient")
    p.add_argument("--clip", type=float, default=0.2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--check-prompts", type=int, default=40, help="reward check: held-out prompts sampled")
    p.add_argument("--check-samples", type=int, default=8, help="reward check: samples per prompt")
    p.add_argument("--max-wait", type=float, default=900, help="seconds to wait for a quiet machine per run")
    p.add_argument("--retry-contended", type=int, default=2,
                   help="step mode: reruns of a round in which another process took CPU time")
    p.add_argument("--binary", default=BINARY, help="tinyzero-train")
    p.add_argument("--work", default=None, help="scratch directory (default bench/peers/out/work-MODE-SHAPE)")
    p.add_argument("--resummarize", action="store_true",
                   help="step mode: recompute the summaries of an existing --out JSON and exit")
    a = p.parse_args()
    if a.resummarize:
        with open(a.out) as f:
            result = json.load(f)
        result.update(summarize_rounds(result["rounds"]))
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)
        r = result["ratio"]
        log(f"TRL/ours whole step over {result['ratio_over']}: median {r['median']:.2f} "
            f"(min {r['min']:.2f}, max {r['max']:.2f}), {len(r['values'])} rounds")
        return
    BINARY = os.path.abspath(a.binary)
    curve = a.mode == "curve"
    a.steps = a.steps or (20 if curve else 2)
    a.prompts = a.prompts or (64 if curve else 16)
    a.max_response_length = a.max_response_length or (288 if curve else 128)
    work = os.path.abspath(a.work or os.path.join(HERE, "out", f"work-{a.mode}-{a.shape}"))
    os.makedirs(work, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    t0 = time.time()

    import torch
    import transformers
    import trl

    a.binary_id = binary_id()
    version = subprocess.run([BINARY, "--version"], capture_output=True, text=True).stdout.strip()
    precision = cpu_precision()
    data = make_data(work, max(1300, a.prompts * max(a.steps, a.peer_steps or 0)))
    model = make_model(a)
    check = reward_check(a, work)
    result = {
        "kind": "grpo-curve" if curve else "grpo-step",
        "shape": a.shape,
        "model": os.path.relpath(model, ROOT),
        "threads": a.threads,
        "precision": "bf16-autocast" if precision == "on" else "fp32",
        "config": {
            "prompts_per_step": a.prompts, "samples_per_prompt": a.n, "max_response_length": a.max_response_length,
            "mini_batch_prompts": a.mini_batch_prompts, "optimizer_steps_per_step": a.prompts // a.mini_batch_prompts,
            "micro_batch_sequences": a.micro_batch, "lr": a.lr, "warmup_steps": a.warmup_steps,
            "lr_schedule": "linear warm-up over RL steps, then constant", "adamw": "betas 0.9/0.999, eps 1e-8, wd 0.01",
            "grad_clip": 1.0, "kl_loss_coef": a.beta, "kl_estimator": "k3 (low_var_kl)", "clip_ratio": a.clip,
            "loss_agg_mode": "seq-mean-token-mean (TRL loss_type grpo)", "advantage": "GRPO, group std",
            "temperature": 1.0, "top_p": 1.0, "stop": ["</answer>"], "prompt_template": PROMPT_TEMPLATE,
            "problems": "tinyzero-train data countdown --seed 0 (config ranges), file order, no shuffle",
            "steps_per_run": a.steps, "peer_steps": a.peer_steps or a.steps, "seed": a.seed,
            "peer_time_limit_s": a.peer_time_limit,
            "reward": "TinyZero countdown (format 0.1, correct 1.0)",
        },
        "reward_check": check,
        "binary": {"path": os.path.relpath(BINARY, ROOT), "version": version, "sha256_16": a.binary_id},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__},
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count()},
        "command": " ".join([os.path.relpath(sys.executable, ROOT)] + [os.path.relpath(sys.argv[0], ROOT)]
                            + sys.argv[1:]),
    }
    if curve:
        result.update(mode_curve(a, model, data, work, precision))
    else:
        result.update(mode_step(a, model, data, work, precision))
    result["elapsed_s"] = time.time() - t0
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    log(f"wrote {a.out} ({result['elapsed_s']:.0f} s)")
    if not curve:
        r = result["ratio"]
        log(f"TRL/ours whole step over {result['ratio_over']}: median {r['median']:.2f} "
            f"(min {r['min']:.2f}, max {r['max']:.2f}), {len(r['values'])} rounds")


if __name__ == "__main__":
    main()
