#!/usr/bin/env python3
"""How good are a tiny-demo model's thinking traces? Samples responses to held-out Countdown problems
with `tinyzero-train generate` and checks every attempt in them (the warm-up formats of
`data countdown-sft`: random "(3+7)*5=10*5=50>26, ..." or fixed-order "3+7=10: 10*5=50>26, ..."):

  arithmetic right   every "=" step of the attempt holds
  numbers right      the attempt uses exactly the given numbers
  comparisons right  the "<", "=" or ">" after the value is true, and the target was copied right
  true hit           some attempt is right, uses the numbers and reaches the target
  answer right       the <answer> does (what TinyZero's reward pays 1.0 for)

and, per operation, how often a step whose operands are single digits ("small") or not ("big") holds.

and why each wrong answer is wrong, judged at the last comparison before </think>:

  ran out            no <answer> (the response reached the length limit)
  stopped at a miss  the last comparison was "<" or ">"
  false "=": near    it wrote "=" after a value within 2 of the target (e.g. "16+1=17=16")
  false "=": far     it wrote "=" after a value further from the target
  false "=": arith   the value before "=" is the target but the step is wrong ("4*4=16" as "4*4=12")
  wrong numbers      a true hit whose equation or answer does not use the given numbers once each

Usage: scripts/trace-stats.py PROBLEMS.jsonl MODEL_DIR [--n 200] [--max-new-tokens 256]
                              [--greedy] [--bin build/tinyzero-train]
       scripts/trace-stats.py --generations RUN/val/step_N.jsonl
       scripts/trace-stats.py --first-hit WHOLE_LISTS.jsonl [--tokenizer MODEL_DIR]
PROBLEMS.jsonl: `tinyzero-train data countdown ... --out DIR` writes DIR/test.jsonl (use the demo's
ranges and seed to get its held-out set). --generations reads what a training run's validation wrote
(trainer.validation_data_dir) instead of generating. For the ordered layout it also gives the share of
sound attempts (every step, the numbers and the group's own step right) by the group they are in.
--first-hit reads a corpus of whole fixed-order lists (`data countdown-sft --order fixed --compare
--stop-prob 0 --attempts 1000`) and says in which group, and after how many response tokens, the
fixed order first reaches the target: what a model that listed without a slip and stopped at its
first hit would score within a length limit. Standard library only.
"""
import argparse
import collections
import json
import re
import subprocess
import sys
import tempfile

TEMPLATE = "Numbers %s, target %d.\nAssistant: <think>"


def value(expr):
    if not re.fullmatch(r"[0-9+\-*/() ]+", expr):
        raise ValueError(expr)
    return eval(expr, {"__builtins__": {}})  # digits and operators only, checked above


def attempts_of(think):
    """(attempt, group, position) of a trace's attempts: random attempts "a1, a2" (group None) or the
    ordered layout's "x+y=r: r+c=v, r-c=w; ..." (group "x+y=r"); position counts the "; "-separated
    chunks from 1 (the ordered layout's groups)."""
    out = []
    for position, chunk in enumerate(think.split(";"), 1):
        group = None
        head = re.match(r"\s*([0-9+\-*/]+=\d+):(.*)$", chunk)
        if head:
            group, chunk = head.group(1), head.group(2)
        out += [(a.strip(), group, position) for a in chunk.split(",") if a.strip()]
    return out


def expand(step, group):
    """ "10+5" in the group "3+7=10" -> "(3+7)+5" (the operand equal to the group's value)."""
    inner, r = group.split("=")
    m = re.fullmatch(r"(\d+)([-+*/])(\d+)", step)
    if not m:
        return step
    x, op, y = m.groups()
    return "(%s)%s%s" % (inner, op, y) if x == r else "%s%s(%s)" % (x, op, inner) if y == r else step


def read_generations(path):
    """Problems and responses from a validation's JSONL (prompt, response, ...; one line each)."""
    probs, texts = [], []
    for n, line in enumerate(open(path), 1):
        rec = json.loads(line)
        m = re.search(r"Numbers \[([0-9, ]+)\], target (\d+)", rec["prompt"])
        if not m:
            sys.exit("%s:%d: the prompt is not the demo's (\"Numbers [a, b, c], target t.\"): %r"
                     % (path, n, rec["prompt"][:80]))
        probs.append({"nums": [int(x) for x in m.group(1).split(",")], "target": int(m.group(2))})
        texts.append(rec["response"])
    return probs, texts


def generate(args):
    probs = [json.loads(line) for line in open(args.problems)][: args.n]
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump({"prompts": [TEMPLATE % (str(p["nums"]), p["target"]) for p in probs]}, f)
        f.flush()
        cmd = [args.bin, "generate", "--model", args.model, "--input", f.name, "--max-new-tokens",
               str(args.max_new_tokens), "--seed", "3", "--stop", "</answer>"]
        cmd += ["--greedy"] if args.greedy else ["--temperature", "1"]
        out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(out.stderr)
    return probs, json.loads(out.stdout.strip().splitlines()[-1])["text"]


def relation(attempt):
    """(relation, target, where the comparison starts) of an attempt ending in a comparison: "50>26"
    (--compare) or "50?26>" (--compare-layout target-first); None without one."""
    m = re.search(r"([<=>])(\d+)$", attempt)
    if m:
        return m.group(1), int(m.group(2)), m.start()
    m = re.search(r"\?(\d+)([<=>])$", attempt)
    return (m.group(2), int(m.group(1)), m.start()) if m else None


def outcome(p, text, right):
    """Why a response is wrong (see the module doc), or "right"."""
    if right:
        return "right"
    if "<answer>" not in text:
        return "ran out"
    last = re.findall(r"([0-9+\-*/]+)=(\d+)(?:([<=>])\d+|\?\d+([<=>]))", text.split("</think>")[0])
    if not last or (last[-1][2] or last[-1][3]) != "=":
        return "stopped at a miss"
    step, written = last[-1][0], int(last[-1][1])
    if written != p["target"]:
        return "false \"=\": near" if abs(written - p["target"]) <= 2 else "false \"=\": far"
    try:
        holds = abs(value(step) - written) < 1e-9
    except Exception:
        holds = False
    return "wrong numbers" if holds else "false \"=\": arith"


def first_hit(args):
    """--first-hit: where the fixed order first reaches the target, from a corpus listing every
    candidate (data countdown-sft --order fixed --compare --stop-prob 0 --attempts 1000): the group it
    is in and, with --tokenizer, the response's length in tokens had it stopped and answered there."""
    groups, cuts = [], []
    for n, line in enumerate(open(args.first_hit), 1):
        rec = json.loads(line)
        think = rec["response"].split("</think>")[0]
        hit, cursor = None, 0
        for a, group, position in attempts_of(think):
            cursor = think.index(a, cursor) + len(a)
            rel = relation(a)
            if rel and rel[0] == "=":
                hit = (position, expand(a.split("=")[0], group) if group else a.split("=")[0])
                break
        if not hit:
            sys.exit("%s:%d: no attempt reaches the target: not a whole fixed-order list with --compare"
                     % (args.first_hit, n))
        groups.append(hit[0])
        cuts.append("%s </think> <answer>%s</answer>" % (think[:cursor], hit[1]))
    n = len(groups)
    line = "first hit by group (cumulative): " + " ".join(
        "%d %.1f%%" % (k, 100.0 * sum(g <= k for g in groups) / n) for k in sorted(set(groups)))
    print("%d problems; %s" % (n, line))
    if args.tokenizer:
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl") as f:
            f.writelines(json.dumps({"text": c}) + "\n" for c in cuts)
            f.flush()
            cmd = [args.bin, "tokenizer", "encode", "--tokenizer", args.tokenizer, "--input", f.name]
            out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(out.stderr)
        lengths = sorted(len(json.loads(x)["ids"]) for x in out.stdout.splitlines() if x.strip())
        within = ("%d: %.1f%%" % (m, 100.0 * sum(x <= m for x in lengths) / n)
                  for m in (128, 192, 256, 288, 384, 480))
        print("response tokens to the first hit: median %d; within %s" % (lengths[n // 2], ", ".join(within)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("problems", nargs="?")
    ap.add_argument("model", nargs="?")
    ap.add_argument("--generations", help="a validation's step_N.jsonl (trainer.validation_data_dir)")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--greedy", action="store_true")
    ap.add_argument("--bin", default="build/tinyzero-train")
    ap.add_argument("--first-hit", help="a corpus of whole fixed-order lists: where each first hits")
    ap.add_argument("--tokenizer", help="--first-hit: a model or tokenizer directory to count tokens with")
    args = ap.parse_args()

    if args.first_hit:
        return first_hit(args)
    if args.generations:
        probs, texts = read_generations(args.generations)
    elif args.problems and args.model:
        probs, texts = generate(args)
    else:
        ap.error("give PROBLEMS.jsonl and MODEL_DIR, or --generations FILE")

    steps, bad, outcomes = collections.Counter(), collections.Counter(), collections.Counter()
    attempts = arith = nums_ok = hits = answers = 0
    cmp_total = cmp_right = cmp_target = 0
    by_position, sound_at = collections.Counter(), collections.Counter()  # ordered layout, by group
    for p, text in zip(probs, texts):
        found = False
        for a, group, position in attempts_of(text.split("</think>")[0]):
            rel = relation(a)
            if rel:
                a = a[: rel[2]]
            parts = [x.strip() for x in a.split("=")]
            if len(parts) < 2:
                continue
            # Ordered layout: "r op c" in the group "x op y=r" stands for "(x op y) op c".
            full = expand(parts[0], group) if group else parts[0]
            attempts += 1
            good = True
            for x, y in zip(parts, parts[1:]):
                m = re.search(r"(\d+)([-+*/])(\d+)", x)
                key = (m.group(2), "big" if int(m.group(1)) > 9 or int(m.group(3)) > 9 else "small") if m else ("?", "")
                try:
                    ok = abs(value(x) - value(y)) < 1e-9
                except Exception:
                    ok = False
                steps[key] += 1
                bad[key] += not ok
                good &= ok
            arith += good
            uses_numbers = sorted(int(x) for x in re.findall(r"\d+", full)) == sorted(p["nums"])
            nums_ok += uses_numbers
            try:
                v = value(parts[-1])
                if rel:
                    r, t = rel[0], rel[1]
                    cmp_total += 1
                    cmp_right += (v < t and r == "<") or (v == t and r == "=") or (v > t and r == ">")
                    cmp_target += t == p["target"]
                whole = value(full)
                found |= good and uses_numbers and abs(whole - p["target"]) < 1e-9
                sound = good and uses_numbers and abs(whole - v) < 1e-9
            except Exception:
                sound = False
            if group:
                by_position[min(position, 10)] += 1
                sound_at[min(position, 10)] += sound
        hits += found
        m = re.findall(r"<answer>(.*?)</answer>", text)
        right = False
        if m:
            try:
                used = sorted(int(x) for x in re.findall(r"\d+", m[-1]))
                right = used == sorted(p["nums"]) and abs(value(m[-1]) - p["target"]) < 1e-9
            except Exception:
                pass
        answers += right
        outcomes[outcome(p, text, right)] += 1
    n, pct = len(probs), lambda a, b: 100.0 * a / max(b, 1)
    print("%d problems, %.1f attempts each: arithmetic right %.0f%%, numbers right %.0f%%; "
          "true hit in the trace %.0f%%, answer right %.1f%%"
          % (n, attempts / n, pct(arith, attempts), pct(nums_ok, attempts), pct(hits, n), pct(answers, n)))
    if cmp_total:
        print("comparisons: %d, right %.0f%%, target copied right %.0f%%"
              % (cmp_total, pct(cmp_right, cmp_total), pct(cmp_target, cmp_total)))
    print("steps that hold: " + " ".join("%s%s %.0f%% (%d)" % (k[0], k[1], 100 - pct(bad[k], steps[k]), steps[k])
                                         for k in sorted(steps)))
    if by_position:
        print("sound attempts by group (steps, numbers and group right): " +
              " ".join("%s%d %.0f%% (%d)" % ("" if k < 10 else ">=", k, pct(sound_at[k], by_position[k]),
                                             by_position[k]) for k in sorted(by_position)))
    print("outcomes: " + ", ".join("%s %.1f%%" % (k, pct(v, n)) for k, v in outcomes.most_common()))


if __name__ == "__main__":
    main()
