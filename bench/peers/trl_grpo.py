"""TRL's GRPOTrainer on a local model directory, with hyper-parameters matched to tinyzero's GRPO, timed
per generation batch (= one tinyzero RL step). One JSONL record per step.

    bench/peers/.venv/bin/python bench/peers/trl_grpo.py --model tests/data/tiny-demo-warm \\
        --problems train.jsonl --steps 20 --out trl_steps.jsonl

How tinyzero's settings map onto TRL 1.16 (read from trl/trainer/grpo_trainer.py and grpo_config.py):

  tinyzero                                   TRL
  data.train_batch_size P, rollout.n G       generation_batch_size = P*G, num_generations = G
  actor.ppo_micro_batch_size u (sequences)   per_device_train_batch_size = u (also the chunk of the
                                             old/ref log-prob passes, = rollout.log_prob_micro_batch_size)
  actor.ppo_mini_batch_size m (prompts)      gradient_accumulation_steps = m*G/u, so steps_per_generation
                                             = P*G/u micro-batches give P/m optimizer steps per generation
  actor.ppo_epochs 1                         num_iterations = 1
  max_response_length, temperature, top_p   max_completion_length, temperature, top_p (top_k 0, no min_p)
  rollout.stop ["</answer>"]                 generation_kwargs stop_strings (transformers' StopStringCriteria;
                                             generate() needs the tokenizer, bound below)
  loss_agg_mode seq-mean-token-mean          loss_type "grpo" (per-sequence token mean, mean over the
                                             micro-batch, / gradient_accumulation_steps: the mean over the
                                             mini-batch's sequences)
  clip_ratio_low = high = 0.2                epsilon = 0.2 (epsilon_high = epsilon)
  use_kl_loss, kl_loss_coef 0.2, low_var_kl  beta = 0.2 (TRL's KL is k3, per token, added to the loss)
  norm_adv_by_std (GRPO)                     scale_rewards "group"
  AdamW lr, betas, eps, weight_decay 0.01    the same torch.optim.AdamW, passed in, decaying every
                                             parameter as ours does (HF's default would skip biases/norms)
  warm-up 3 RL steps, then constant          a LambdaLR over optimizer steps: lr * min(1, (k // (P/m) + 1) / 3),
                                             so all optimizer steps of RL step k use that step's lr, as ours
  grad_clip 1.0                              max_grad_norm = 1.0
  model.autocast_bf16 (auto: on with AMX)    bf16 = True|False (accelerate's CPU autocast; it wraps forward,
                                             so generate() runs under it too; checked and recorded)
  data.shuffle false                         shuffle_dataset = False (the same problem file in the same order)
  activation_checkpointing false             gradient_checkpointing = False (TRL's default is True)

Not matched exactly (TRL has no switch for them):
  - KL clamps: ours clamps log(ref/policy) to [-20, 20] and k3 to [-10, 10] (veRL); TRL does not clamp.
  - dual-clip PPO: ours bounds the loss of negative-advantage tokens at clip_ratio_c = 3; TRL has none.
  - advantage epsilon: ours (r - mean) / (std + 1e-6) in float64; TRL's std + 1e-4 in float32.
  - old log-probs: ours reuses the sampler's (rollout.reuse_log_probs); TRL runs a separate no-grad pass
    over the generation batch (it must: its optimizer steps span one generation) - timed as old_log_prob_s.
  - mini-batches: ours takes 8 whole prompt groups per optimizer step; TRL shuffles the generation batch's
    sequences before splitting it, so a mini-batch mixes groups (same gradient in expectation).
  - padding: ours sorts each mini-batch by length into micro-batches padded to their own longest row; TRL
    pads the whole generation batch to its longest completion.
  - stop strings: transformers checks them after every token and then pads the row with pad_token_id,
    which for these tokenizers is the EOS id; TRL keeps the first EOS in the loss mask, so a row that
    stopped on "</answer>" is trained as "...</answer><EOS>". Ours checks stop strings only every few
    decode steps and skips rows that already sampled EOS, so its rows mostly end "...</answer><EOS>" too
    (EOS sampled; the warm model emits it after </answer> with probability ~1). Left as TRL does it.
  - entropy: TRL computes the entropy of every loss forward (for its logs); ours does not need it.
  - sampling RNG: different generators, so the two stacks draw different responses.

Timing (time.perf_counter, wrapped around TRL's own methods; each stage's wall time, no overlap):
  step_s   from the start of _generate_and_score_completions (the first thing of a generation batch)
           to on_step_end of the batch's last optimizer step (after clip, AdamW and scheduler step)
  gen_s    model.generate (sampling, incl. the stop-string criteria)
  ref_s    _get_per_token_logps_and_entropies on the reference model (no grad)
  old_log_prob_s  the same on the policy (no grad)
  reward_s _calculate_rewards
  update_s step_s minus all of _generate_and_score_completions (the loss forwards, backwards, clips,
           AdamW steps and TRL's per-micro-batch metrics)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="Hugging Face model directory (with its tokenizer)")
    p.add_argument("--problems", required=True, help="JSONL of {target, nums} training problems, used in order")
    p.add_argument("--out", required=True, help="JSONL of per-step records")
    p.add_argument("--steps", type=int, default=20, help="RL steps (generation batches)")
    p.add_argument("--prompts", type=int, default=64, help="prompts per step (data.train_batch_size)")
    p.add_argument("--n", type=int, default=8, help="samples per prompt (rollout.n)")
    p.add_argument("--mini-batch-prompts", type=int, default=8, help="prompts per optimizer step (ppo_mini_batch_size)")
    p.add_argument("--micro-batch", type=int, default=16, help="sequences per forward/backward (ppo_micro_batch_size)")
    p.add_argument("--max-response-length", type=int, default=288)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--stop", action="append", default=None, help="stop string (repeatable); default </answer>")
    p.add_argument("--prompt-template", default="Numbers {numbers}, target {target}.\nAssistant: <think>")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--warmup-steps", type=int, default=3, help="RL steps of linear warm-up, then constant")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--betas", type=float, nargs=2, default=(0.9, 0.999))
    p.add_argument("--eps", type=float, default=1e-8)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--beta", type=float, default=0.2, help="KL loss coefficient")
    p.add_argument("--clip", type=float, default=0.2, help="PPO clip epsilon")
    p.add_argument("--bf16", choices=["on", "off"], required=True, help="CPU bf16 autocast")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--time-limit", type=float, default=0,
                   help="stop after the step that ends past this many seconds of training (0 = run all steps)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    stops = args.stop if args.stop is not None else ["</answer>"]
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["WANDB_DISABLED"] = "true"
    os.environ["HF_HUB_OFFLINE"] = "1"

    import torch

    torch.set_num_threads(args.threads)
    import transformers
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    import trl
    from trl import GRPOConfig, GRPOTrainer

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from countdown_reward import make_trl_reward

    P, G, m, u = args.prompts, args.n, args.mini_batch_prompts, args.micro_batch
    if P % m or (m * G) % u:
        sys.exit(f"trl_grpo: prompts {P} must be a multiple of mini-batch {m}, and {m}x{G} of micro-batch {u}")
    opt_per_gen = P // m
    grad_accum = m * G // u
    steps_per_generation = P * G // u

    problems = [json.loads(line) for line in open(args.problems) if line.strip()]
    need = P * args.steps
    if len(problems) < need:
        sys.exit(f"trl_grpo: {args.problems} has {len(problems)} problems, {need} needed (no second epoch)")
    problems = problems[:need]
    rows = [{"prompt": args.prompt_template.replace("{numbers}", str(list(p["nums"])))
             .replace("{target}", str(p["target"])), "target": p["target"], "nums": p["nums"]} for p in problems]
    dataset = Dataset.from_list(rows)

    tokenizer = AutoTokenizer.from_pretrained(args.model, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=tuple(args.betas), eps=args.eps,
                                  weight_decay=args.weight_decay)

    def lr_factor(opt_step):  # opt_step counts optimizer steps from 0; RL step = opt_step // opt_per_gen
        if args.warmup_steps <= 0:
            return 1.0
        return min(1.0, (opt_step // opt_per_gen + 1) / args.warmup_steps)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)

    tmp = tempfile.mkdtemp(prefix="trl_grpo_")
    config = GRPOConfig(
        output_dir=tmp,
        use_cpu=True,
        bf16=args.bf16 == "on",
        seed=args.seed,
        max_steps=args.steps * opt_per_gen,
        per_device_train_batch_size=u,
        gradient_accumulation_steps=grad_accum,
        steps_per_generation=steps_per_generation,
        num_generations=G,
        num_iterations=1,
        max_completion_length=args.max_response_length,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=0,
        generation_kwargs={"stop_strings": stops},
        learning_rate=args.lr,
        max_grad_norm=args.grad_clip,
        beta=args.beta,
        epsilon=args.clip,
        loss_type="grpo",
        scale_rewards="group",
        shuffle_dataset=False,
        gradient_checkpointing=False,
        use_vllm=False,
        report_to="none",
        save_strategy="no",
        logging_steps=opt_per_gen,
        disable_tqdm=True,
        log_completions=False,
        dataloader_num_workers=0,
    )

    record = []  # (scores, lengths) per reward call
    trainer = GRPOTrainer(model=model, reward_funcs=make_trl_reward(tokenizer, record), args=config,
                          train_dataset=dataset, processing_class=tokenizer, optimizers=(optimizer, scheduler))
    policy = trainer.model
    assert trainer.ref_model is not None, "beta > 0 must give TRL a reference model"
    # The model given is the one trained (no DDP on one CPU process), so wrapping its methods is safe.
    assert policy is model, "TRL wrapped the policy; the timing hooks below assume it did not"

    # --- timing hooks ------------------------------------------------------------------------------
    clock = time.perf_counter
    cur = {}
    state = {"generating": False, "gen_dtypes": set()}

    def reset_cycle():
        cur.clear()
        cur.update(start=None, gen_s=0.0, ref_s=0.0, old_log_prob_s=0.0, reward_s=0.0, gen_and_score_s=0.0,
                   gen_calls=0)

    reset_cycle()

    orig_generate = model.generate

    def timed_generate(*a, **kw):
        kw.setdefault("tokenizer", tokenizer)  # transformers' stop_strings need it; TRL does not pass it
        t = clock()
        state["generating"] = True
        try:
            return orig_generate(*a, **kw)
        finally:
            state["generating"] = False
            cur["gen_s"] += clock() - t
            cur["gen_calls"] += 1

    model.generate = timed_generate

    def dtype_hook(module, inputs, output):
        if state["generating"]:
            state["gen_dtypes"].add(str(output.dtype).replace("torch.", ""))

    model.model.layers[0].self_attn.q_proj.register_forward_hook(dtype_hook)

    orig_logps = trainer._get_per_token_logps_and_entropies

    def timed_logps(mdl, *a, **kw):
        if torch.is_grad_enabled():
            return orig_logps(mdl, *a, **kw)
        t = clock()
        try:
            return orig_logps(mdl, *a, **kw)
        finally:
            cur["ref_s" if mdl is trainer.ref_model else "old_log_prob_s"] += clock() - t

    trainer._get_per_token_logps_and_entropies = timed_logps

    orig_rewards = trainer._calculate_rewards

    def timed_rewards(*a, **kw):
        t = clock()
        try:
            return orig_rewards(*a, **kw)
        finally:
            cur["reward_s"] += clock() - t

    trainer._calculate_rewards = timed_rewards

    orig_gas = trainer._generate_and_score_completions

    def timed_gas(*a, **kw):
        t = clock()
        if cur["start"] is None:
            cur["start"] = t
        try:
            return orig_gas(*a, **kw)
        finally:
            cur["gen_and_score_s"] += clock() - t

    trainer._generate_and_score_completions = timed_gas

    out = open(args.out, "w")
    steps_done = []

    class StepEnd(TrainerCallback):
        def on_step_end(self, targs, tstate, control, **kw):
            if tstate.global_step % opt_per_gen:
                return
            now = clock()
            if cur["start"] is None or not record:
                raise RuntimeError("trl_grpo: a generation batch ended without generation or rewards")
            scores, lengths = record[-1]
            record.clear()
            step = tstate.global_step // opt_per_gen
            step_s = now - cur["start"]
            rec = {
                "step": step,
                "step_s": step_s,
                "gen_s": cur["gen_s"],
                "ref_s": cur["ref_s"],
                "old_log_prob_s": cur["old_log_prob_s"],
                "reward_s": cur["reward_s"],
                "update_s": step_s - cur["gen_and_score_s"],
                "other_s": step_s - cur["gen_s"] - cur["ref_s"] - cur["old_log_prob_s"]
                - (step_s - cur["gen_and_score_s"]),
                "reward_mean": sum(scores) / len(scores),
                "success_rate": sum(s >= 1.0 for s in scores) / len(scores),
                "format_rate": sum(s > 0 for s in scores) / len(scores),
                "response_length_mean": sum(lengths) / len(lengths),
                "responses": len(scores),
                "gen_calls": cur["gen_calls"],
                "gen_dtypes": sorted(state["gen_dtypes"]),
            }
            # lr of this step's optimizer steps (the scheduler has already stepped past the last one)
            rec["lr"] = optimizer.param_groups[0]["initial_lr"] * lr_factor(tstate.global_step - 1)
            steps_done.append(rec)
            out.write(json.dumps(rec) + "\n")
            out.flush()
            print(f"trl step {step}: {step_s:.2f} s (gen {rec['gen_s']:.2f}, ref {rec['ref_s']:.2f}, "
                  f"old {rec['old_log_prob_s']:.2f}, update {rec['update_s']:.2f}) reward {rec['reward_mean']:.3f} "
                  f"success {rec['success_rate']:.3f} len {rec['response_length_mean']:.1f}", flush=True)
            reset_cycle()
            if args.time_limit > 0 and clock() - train_start[0] > args.time_limit and step < args.steps:
                print(f"trl_grpo: time limit {args.time_limit:.0f} s reached after step {step}", flush=True)
                control.should_training_stop = True

    trainer.add_callback(StepEnd())
    train_start = [clock()]
    meta = {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
            "threads": torch.get_num_threads(), "bf16": config.bf16,
            "generation_batch_size": config.generation_batch_size, "steps_per_generation": config.steps_per_generation,
            "gradient_accumulation_steps": config.gradient_accumulation_steps,
            "optimizer_steps_per_generation": opt_per_gen, "max_steps": config.max_steps}
    print("trl_grpo: " + json.dumps(meta), flush=True)
    train_start[0] = clock()
    trainer.train()
    out.close()
    meta["steps_done"] = len(steps_done)
    meta["stopped_by_time_limit"] = len(steps_done) < args.steps and args.time_limit > 0
    if len(steps_done) != args.steps and not meta["stopped_by_time_limit"]:
        sys.exit(f"trl_grpo: {len(steps_done)} steps recorded, {args.steps} expected")
    if any(r["gen_calls"] != 1 for r in steps_done):
        sys.exit("trl_grpo: expected one generate() call per step")
    with open(args.out + ".meta.json", "w") as f:
        json.dump(meta, f)


if __name__ == "__main__":
    main()
