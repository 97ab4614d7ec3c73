"""The peer side of `tinyzero-train bench decode logprob train`: the same phases, shapes and
precisions with Hugging Face transformers, written the way a transformers/TRL user runs them.

  decode   model.generate with the KV cache, sampling at temperature 1 (top-k and top-p off), a fixed
           number of new tokens (no EOS), random prompt ids, an all-ones mask
  logprob  no-grad forward over B x T ids, then the log-prob of each next token with TRL's
           selective_log_softmax (what GRPOTrainer uses for its old and reference log-probs)
  train    forward, log-probs as above, a policy-gradient-shaped loss -(logp * adv).mean(), backward,
           clip_grad_norm_(1.0) and torch.optim.AdamW: the actor update of one micro-batch

Timing follows cmd_bench.cpp: decode is the best of --reps runs after one 8-token warm-up call and
its prefill is the best 1-token call; logprob and train are the best of --train-reps after one
untimed call. The JSON it prints has the same "results" records as `tinyzero-train bench --json`.
"""

import argparse
import json
import os
import sys
import time

import torch
from transformers import AutoModelForCausalLM, GenerationConfig
from transformers.utils import logging as hf_logging

try:  # TRL's own helper (what GRPOTrainer runs) where TRL is installed, as in bench/peers/.venv
    from trl.trainer.utils import selective_log_softmax
except ImportError:  # a GPU machine with transformers alone: the same computation
    def selective_log_softmax(logits, index):
        picked = torch.gather(logits, -1, index.unsqueeze(-1)).squeeze(-1)
        return picked.float() - torch.logsumexp(logits.float(), dim=-1)

DEVICE = torch.device("cpu")


def sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def best_time(reps, fn):
    fn()
    sync()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def precisions(text):
    out = []
    for item in text.split(","):
        if item not in ("fp32", "bf16"):
            sys.exit(f"hf_phases: --precision {text!r}: expected fp32, bf16 or fp32,bf16")
        name = "fp32" if item == "fp32" else "bf16-autocast"
        if name not in out:
            out.append(name)
    return out


def autocast(name):
    return torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=name == "bf16-autocast")


def token_logprobs(model, ids, mask):
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    return selective_log_softmax(logits, ids[:, 1:])


def bench_decode(model, args, vocab, records):
    P, N = args.prompt_len, args.new_tokens
    cfg = GenerationConfig(do_sample=not args.greedy, temperature=1.0, top_k=0, top_p=1.0,
                           max_new_tokens=N, min_new_tokens=0, eos_token_id=None, pad_token_id=0,
                           use_cache=True)
    warm = GenerationConfig(**{**cfg.to_dict(), "max_new_tokens": min(8, N)})
    one = GenerationConfig(**{**cfg.to_dict(), "max_new_tokens": 1})
    for prec in precisions(args.precision):
        for B in [int(b) for b in args.batch.split(",")]:
            g = torch.Generator().manual_seed(1)
            ids = torch.randint(0, vocab, (B, P), generator=g).to(DEVICE)
            mask = torch.ones_like(ids)
            torch.manual_seed(1)

            def run(c):
                with torch.no_grad(), autocast(prec):
                    out = model.generate(input_ids=ids, attention_mask=mask, generation_config=c)
                assert out.shape == (B, P + c.max_new_tokens), out.shape
                return out

            run(warm)
            prefill = best_time(max(1, args.reps), lambda: run(one))
            best = float("inf")
            for _ in range(args.reps):
                t0 = time.perf_counter()
                run(cfg)
                sync()
                best = min(best, time.perf_counter() - t0)
            decode_s = best - prefill if best > prefill and N > 1 else 0.0
            records.append({
                "phase": "decode", "precision": prec, "batch": B, "prompt_len": P, "new_tokens": N,
                "sampling": "greedy" if args.greedy else "temperature 1", "seconds": best,
                "prefill_seconds": prefill, "tokens_per_s": B * N / best,
                "ms_per_step": decode_s * 1e3 / (N - 1) if decode_s > 0 else 0.0,
            })


def bench_logprob(model, args, vocab, records):
    B, T = args.train_batch, args.seq_len
    ids = torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(2)).to(DEVICE)
    mask = torch.ones_like(ids)
    model.eval()
    for prec in precisions(args.precision):
        def step():
            with torch.no_grad(), autocast(prec):
                token_logprobs(model, ids, mask)
        s = best_time(args.train_reps, step)
        records.append({"phase": "logprob", "precision": prec, "batch": B, "seq_len": T, "seconds": s,
                        "tokens_per_s": B * T / s})


def bench_train(model, args, vocab, records):
    B, T = args.train_batch, args.seq_len
    ids = torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(3)).to(DEVICE)
    mask = torch.ones_like(ids)
    adv = torch.randn(B, T - 1, generator=torch.Generator().manual_seed(4)).to(DEVICE)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()
    for prec in precisions(args.train_precision):
        def step():
            opt.zero_grad(set_to_none=True)
            with autocast(prec):
                loss = -(token_logprobs(model, ids, mask) * adv).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        s = best_time(args.train_reps, step)
        records.append({"phase": "train", "precision": prec, "batch": B, "seq_len": T, "seconds": s,
                        "tokens_per_s": B * T / s})
    opt.zero_grad(set_to_none=True)
    model.eval()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("phases", nargs="*", help="decode logprob train (default: all three)")
    p.add_argument("--model", required=True, help="Hugging Face model directory")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--batch", default="16,64", help="decode batch sizes, comma-separated")
    p.add_argument("--prompt-len", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--greedy", action="store_true")
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--train-batch", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--train-reps", type=int, default=3)
    p.add_argument("--precision", default="fp32", help="decode and logprob precisions: fp32,bf16")
    p.add_argument("--train-precision", default="fp32,bf16")
    p.add_argument("--json", default="-", help="output file (- = stdout)")
    args = p.parse_args()

    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    global DEVICE
    DEVICE = torch.device(args.device)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).to(DEVICE)
    model.eval()
    vocab = model.config.vocab_size
    records = []
    phases = set(args.phases or ["decode", "logprob", "train"])
    if phases - {"decode", "logprob", "train"}:
        sys.exit(f"hf_phases: unknown phases {sorted(phases - {'decode', 'logprob', 'train'})}")
    if "decode" in phases:
        bench_decode(model, args, vocab, records)
    if "logprob" in phases:
        bench_logprob(model, args, vocab, records)
    if "train" in phases:  # changes the weights: after the inference phases
        bench_train(model, args, vocab, records)
    import transformers
    out = {"tool": "hf_phases.py", "device": str(DEVICE), "torch": torch.__version__, "transformers": transformers.__version__,
           "model": args.model, "threads": torch.get_num_threads(),
           "attn_implementation": model.config._attn_implementation, "results": records}
    text = json.dumps(out, indent=2)
    if args.json == "-":
        print(text)
    else:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
