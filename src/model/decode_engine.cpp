// The continuous-batching decode engine (see decode_engine.h).
//
// Every slot (a row of the batch) holds one sample: its cache rows, an additive key bias over the
// cache columns, the column its next key goes to, its rotary position, its token count and its random
// stream's key. A step feeds each slot's last token, samples the next one for every slot and appends
// it to the slot's output row. Every check_every steps (or when every row must have ended) the host
// looks: rows that ended (EOS, length, stop check) are copied out, their slots take the next samples,
// and, when no sample is left to start, the idle slots are dropped from the batch (the live rows move
// to the front of the slot tensors, which keep their storage).
//
// With static shapes, the batch is the first A slots where A is a power of two (or every slot; idle
// slots pad it) and the attention spans a multiple of kDecodeWidthStep cache columns, so a decode step
// takes one of a few shapes; on CUDA each shape's step is captured as a graph and replayed
// (decode_graphs.h). The extra columns and rows are masked out, so the tokens are the same.
#include "decode_engine.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <algorithm>
#include <deque>
#include <limits>
#include <memory>

#include "decode_graphs.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/model/kv_cache.h"
#include "tinyzero/model/qwen2.h"

namespace tinyzero {

GenerationJob::GenerationJob(const std::vector<std::vector<int64_t>>& p, const GenerateOptions& o)
    : prompts(p), options(o), outputs(p.size() * static_cast<size_t>(o.num_samples)) {
  for (const auto& prompt : p) longest_prompt = std::max(longest_prompt, static_cast<int64_t>(prompt.size()));
}

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Static-shape rows: the smallest power of two holding `live` rows, at most `slots`.
int64_t bucket_rows(int64_t live, int64_t slots) {
  int64_t rows = 1;
  while (rows < live) rows *= 2;
  return std::min(rows, slots);
}

// Prompts prefilled together: all but their last token (which the first decode step feeds), each from
// column 0 and right-padded to `width` columns (a multiple of kCacheColumnAlign).
struct PrefillBatch {
  KVCache cache;    // (k rows, KV, width, D) per layer; empty when width is 0
  at::Tensor bias;  // (k, width) float: 0 at real tokens, -inf at padding
  int64_t width = 0;
};

// A prefilled prompt whose samples have not all been given a slot yet.
struct ReadyPrompt {
  std::shared_ptr<PrefillBatch> batch;
  int64_t row = 0;          // in batch
  int64_t prompt = 0;       // index in the job
  int64_t next_sample = 0;  // the first sample not started
};

class Engine {
 public:
  Engine(CausalLMImpl& model, GenerationJob& job, int64_t slots, int64_t first, int64_t end)
      : graphs_(job.options.cuda_graphs &&
                    (model.parameter_host() == nullptr || model.parameter_host()->passes_are_static()),
                model.device()),
        m_(model),
        job_(job),
        next_prompt_(first),
        end_prompt_(end),
        o_(job.options),
        dev_(model.device()),
        A_(slots),
        slots_(slots),
        N_(job.options.max_new_tokens),
        C_(job.capacity()),
        sample_of_(static_cast<size_t>(slots), -1),
        wbound_(static_cast<size_t>(slots), 0),
        tbound_(static_cast<size_t>(slots), 0) {
    static_shapes_ = o_.static_shapes || graphs_.active();
    cache_dtype_ = decode_cache_dtype(model);
    cache_ = KVCache::allocate(model.config(), A_, C_, cache_dtype_, dev_);
    auto lopts = at::TensorOptions().dtype(at::kLong).device(dev_);
    tok_ = at::zeros({A_, 1}, lopts);
    pos_ = at::zeros({A_, 1}, lopts);
    widx_ = at::zeros({A_}, lopts);
    key_ = at::zeros({A_}, lopts);
    t_ = at::zeros({A_}, lopts);
    eos_fin_ = at::ones({A_}, lopts.dtype(at::kBool));
    bias_ = idle_bias(A_);
    out_ids_ = at::full({A_, N_ + 1}, o_.pad_id, lopts);  // column N: where rows that ended write
    out_lp_ = at::zeros({A_, N_ + 1}, lopts.dtype(at::kFloat));
    if (!o_.eos_ids.empty()) eos_ = torch::tensor(o_.eos_ids, torch::kLong).to(dev_);
  }

  int64_t graphs_captured() const { return graphs_.captured(); }

  void run() {
    std::vector<int64_t> all(static_cast<size_t>(A_));
    for (int64_t s = 0; s < A_; ++s) all[static_cast<size_t>(s)] = s;
    admit(all);
    int64_t since_check = 0;
    while (active_count() > 0) {
      step();
      ++since_check;
      bool all_at_budget = true;
      for (int64_t s = 0; s < A_; ++s)
        if (sample_of_[static_cast<size_t>(s)] >= 0 && tbound_[static_cast<size_t>(s)] < N_)
          all_at_budget = false;
      if (since_check == o_.check_every || all_at_budget) {
        since_check = 0;
        check();
      }
    }
  }

 private:
  int64_t active_count() const {
    return std::count_if(sample_of_.begin(), sample_of_.end(), [](int64_t v) { return v >= 0; });
  }

  // Bias rows of idle slots: only column 0 visible, so their (unused) attention stays finite.
  at::Tensor idle_bias(int64_t rows) const {
    at::Tensor b = at::full({rows, C_}, kNegInf, at::TensorOptions().dtype(at::kFloat).device(dev_));
    b.select(1, 0).fill_(0.0);
    return b;
  }

  // Takes up to `want` prompts from the job's queue and prefills them in one batch.
  void prefill_more(int64_t want) {
    std::vector<int64_t> picked;
    while (static_cast<int64_t>(picked.size()) < want && next_prompt_ < end_prompt_)
      picked.push_back(next_prompt_++);
    if (picked.empty()) return;
    const int64_t k = static_cast<int64_t>(picked.size());
    auto batch = std::make_shared<PrefillBatch>();
    for (int64_t i : picked)
      batch->width =
          std::max(batch->width, static_cast<int64_t>(job_.prompts[static_cast<size_t>(i)].size()) - 1);
    batch->width = cache_columns(batch->width);
    const int64_t W = batch->width;
    batch->bias = at::full({k, W}, kNegInf, at::TensorOptions().dtype(at::kFloat));
    if (W > 0) {
      at::Tensor ids = at::full({k, W}, o_.pad_id, at::kLong), mask = at::zeros({k, W}, at::kLong);
      for (int64_t r = 0; r < k; ++r) {
        const auto& p = job_.prompts[static_cast<size_t>(picked[static_cast<size_t>(r)])];
        const int64_t len = static_cast<int64_t>(p.size()) - 1;  // the last token is fed by the first step
        if (len == 0) continue;
        ids[r].narrow(0, 0, len).copy_(torch::tensor(std::vector<int64_t>(p.begin(), p.end() - 1)));
        mask[r].narrow(0, 0, len).fill_(1);
        batch->bias[r].narrow(0, 0, len).fill_(0.0);
      }
      ids = ids.to(dev_);
      mask = mask.to(dev_);
      batch->cache = KVCache::allocate(m_.config(), k, W, cache_dtype_, dev_);
      m_.hidden_states(ids, mask, positions_from_mask(mask), &batch->cache, 0);
    }
    batch->bias = batch->bias.to(dev_);
    for (int64_t r = 0; r < k; ++r)
      ready_.push_back(ReadyPrompt{batch, r, picked[static_cast<size_t>(r)], 0});
  }

  // Gives the free slots the next samples (prefilling prompts as needed); slots left over go idle.
  void admit(const std::vector<int64_t>& free) {
    const int64_t n = o_.num_samples;
    int64_t waiting = 0;
    for (const auto& r : ready_) waiting += n - r.next_sample;
    const int64_t missing = static_cast<int64_t>(free.size()) - waiting;
    if (missing > 0) prefill_more((missing + n - 1) / n);

    // Slot writes grouped by prefill batch: one copy per batch and layer.
    struct Group {
      std::shared_ptr<PrefillBatch> batch;
      std::vector<int64_t> slots, rows;
    };
    std::vector<Group> groups;
    std::vector<int64_t> slots, last_tok, pos, widx, keys, idle;
    for (int64_t s : free) {
      if (ready_.empty()) {
        idle.push_back(s);
        sample_of_[static_cast<size_t>(s)] = -1;
        continue;
      }
      ReadyPrompt& r = ready_.front();
      const auto& prompt = job_.prompts[static_cast<size_t>(r.prompt)];
      const int64_t len = static_cast<int64_t>(prompt.size()) - 1;  // prefilled: its keys fill [0, len)
      if (groups.empty() || groups.back().batch != r.batch) groups.push_back(Group{r.batch, {}, {}});
      groups.back().slots.push_back(s);
      groups.back().rows.push_back(r.row);
      slots.push_back(s);
      last_tok.push_back(prompt.back());
      pos.push_back(len);   // the last token's position
      widx.push_back(len);  // its first new key goes right after its prompt's
      keys.push_back(sample_key(o_.seed, o_.first_prompt + static_cast<uint64_t>(r.prompt),
                                static_cast<uint64_t>(r.next_sample)));
      sample_of_[static_cast<size_t>(s)] = r.prompt * n + r.next_sample;
      wbound_[static_cast<size_t>(s)] = len;
      tbound_[static_cast<size_t>(s)] = 0;
      if (++r.next_sample == n) ready_.pop_front();
    }
    auto on_dev = [&](const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong).to(dev_); };
    if (!idle.empty()) {
      at::Tensor idx = on_dev(idle);
      bias_.index_copy_(0, idx, idle_bias(static_cast<int64_t>(idle.size())));
      eos_fin_.index_fill_(0, idx, true);
      widx_.index_fill_(0, idx, 0);
      t_.index_fill_(0, idx, N_);
    }
    if (slots.empty()) return;
    for (const Group& g : groups) {
      at::Tensor idx = on_dev(g.slots), rows = on_dev(g.rows);
      const int64_t W = g.batch->width;
      at::Tensor bias = at::full({static_cast<int64_t>(g.slots.size()), C_}, kNegInf,
                                 at::TensorOptions().dtype(at::kFloat).device(dev_));
      if (W > 0) {
        bias.narrow(1, 0, W).copy_(g.batch->bias.index_select(0, rows));
        for (size_t l = 0; l < cache_.k.size(); ++l) {
          cache_.k[l].narrow(2, 0, W).index_copy_(0, idx, g.batch->cache.k[l].index_select(0, rows));
          cache_.v[l].narrow(2, 0, W).index_copy_(0, idx, g.batch->cache.v[l].index_select(0, rows));
        }
      }
      bias_.index_copy_(0, idx, bias);
    }
    at::Tensor idx = on_dev(slots);
    tok_.index_copy_(0, idx, on_dev(last_tok).unsqueeze(1));
    pos_.index_copy_(0, idx, on_dev(pos).unsqueeze(1));
    widx_.index_copy_(0, idx, on_dev(widx));
    key_.index_copy_(0, idx, on_dev(keys));
    t_.index_fill_(0, idx, 0);
    eos_fin_.index_fill_(0, idx, false);
  }

  // The first A_ slots of a per-slot tensor: the batch a step runs on.
  at::Tensor rows(const at::Tensor& t) const { return t.narrow(0, 0, A_); }

  // One token for every slot; no host synchronisation.
  void step() {
    int64_t S = 1;
    for (int64_t s = 0; s < A_; ++s)
      if (sample_of_[static_cast<size_t>(s)] >= 0) S = std::max(S, wbound_[static_cast<size_t>(s)] + 1);
    S = std::min(C_, static_shapes_ ? (S + kDecodeWidthStep - 1) / kDecodeWidthStep * kDecodeWidthStep
                                    : cache_columns(S));
    graphs_.run(A_, S, [&] { step_on_device(S); });
    for (int64_t s = 0; s < A_; ++s) {
      auto u = static_cast<size_t>(s);
      if (sample_of_[u] < 0) continue;
      wbound_[u] = std::min(wbound_[u] + 1, C_ - 1);
      ++tbound_[u];
    }
  }

  // The device work of a step over the first A_ slots and S cache columns: reads and writes the slot
  // tensors in place and nothing on the host, so that a captured graph of it can replay it.
  void step_on_device(int64_t S) {
    at::Tensor tok = rows(tok_), pos = rows(pos_), widx = rows(widx_), key = rows(key_), t = rows(t_);
    at::Tensor eos_fin = rows(eos_fin_), bias = rows(bias_), out_ids = rows(out_ids_), out_lp = rows(out_lp_);
    bias.scatter_(1, widx.unsqueeze(1), 0.0);  // each row sees its own new key
    KVCache cache = cache_.first_rows(A_);
    at::Tensor h = m_.decode_hidden_states(tok, pos, cache, widx, bias.narrow(1, 0, S));
    at::Tensor logits = m_.logits(h.select(1, 0));  // (A, V)
    auto [next, lp] = sample_tokens(logits, o_.sampling, key, t);
    at::Tensor running = eos_fin.logical_not().logical_and_(t < N_);
    at::Tensor col = at::where(running, t, N_).unsqueeze(1);
    out_ids.scatter_(1, col, next.unsqueeze(1));
    out_lp.scatter_(1, col, lp.unsqueeze(1));
    if (eos_.defined())  // (not isin: its sorting variant syncs with the host)
      eos_fin.logical_or_(running.logical_and(next.unsqueeze(1).eq(eos_).any(1)));
    t.add_(running);
    tok.copy_(next.unsqueeze(1));
    pos.add_(1);
    widx.add_(1).clamp_max_(C_ - 1);
  }

  // The host's look: copies out the rows that ended, refills their slots, compacts.
  void check() {
    at::Tensor t_cpu = rows(t_).to(at::kCPU), eos_cpu = rows(eos_fin_).to(at::kCPU);
    auto T = t_cpu.accessor<int64_t, 1>();
    auto E = eos_cpu.accessor<bool, 1>();
    std::vector<int64_t> live;  // slots holding a sample
    for (int64_t s = 0; s < A_; ++s)
      if (sample_of_[static_cast<size_t>(s)] >= 0) live.push_back(s);
    if (live.empty()) return;
    at::Tensor live_idx = torch::tensor(live, torch::kLong).to(dev_);
    int64_t width = 1;
    for (int64_t s : live) width = std::max(width, T[s]);
    at::Tensor ids_cpu = out_ids_.index_select(0, live_idx).narrow(1, 0, width).to(at::kCPU).contiguous();
    auto I = ids_cpu.accessor<int64_t, 2>();

    // Stop check over the rows that have not emitted EOS (as Hugging Face's stop strings: a stop found
    // late still ends the row where it occurs).
    std::vector<int64_t> stop_len(live.size(), -1);
    if (o_.stop_check) {
      std::vector<std::vector<int64_t>> rows;
      std::vector<size_t> which;
      for (size_t i = 0; i < live.size(); ++i) {
        if (E[live[i]]) continue;
        const int64_t len = T[live[i]];
        rows.emplace_back(I[static_cast<int64_t>(i)].data(), I[static_cast<int64_t>(i)].data() + len);
        which.push_back(i);
      }
      if (!rows.empty()) {
        std::vector<int64_t> keep = o_.stop_check(rows);
        if (keep.size() != rows.size()) throw Error("generate: stop_check returned a wrong number of rows");
        for (size_t r = 0; r < keep.size(); ++r)
          if (keep[r] >= 0)
            stop_len[which[r]] = std::min<int64_t>(keep[r], static_cast<int64_t>(rows[r].size()));
      }
    }

    std::vector<size_t> done;  // positions in live
    for (size_t i = 0; i < live.size(); ++i)
      if (E[live[i]] || T[live[i]] >= N_ || stop_len[i] >= 0) done.push_back(i);
    if (done.empty()) return;
    std::vector<int64_t> done_slots;
    for (size_t i : done) done_slots.push_back(live[i]);
    at::Tensor lp_cpu = out_lp_.index_select(0, torch::tensor(done_slots, torch::kLong).to(dev_))
                            .narrow(1, 0, width)
                            .to(at::kCPU)
                            .contiguous();
    auto L = lp_cpu.accessor<float, 2>();
    for (size_t d = 0; d < done.size(); ++d) {
      const size_t i = done[d];
      const int64_t s = live[i];
      SampleOutput& out = job_.outputs[static_cast<size_t>(sample_of_[static_cast<size_t>(s)])];
      int64_t len = T[s];
      out.generated = len;
      out.finish = E[s] ? FinishReason::kEos : FinishReason::kLength;
      if (stop_len[i] >= 0 && (!E[s] || stop_len[i] < len)) {
        len = stop_len[i];
        out.finish = FinishReason::kStop;
      }
      const int64_t* ids = I[static_cast<int64_t>(i)].data();
      const float* lps = L[static_cast<int64_t>(d)].data();
      out.ids.assign(ids, ids + len);
      out.logprobs.assign(lps, lps + len);
    }
    if (o_.on_rows_done) {
      std::lock_guard<std::mutex> lock(job_.progress_mutex);
      o_.on_rows_done(static_cast<int64_t>(done.size()));
    }

    std::vector<int64_t> free = done_slots;
    for (int64_t s = 0; s < A_; ++s)
      if (sample_of_[static_cast<size_t>(s)] < 0) free.push_back(s);
    std::sort(free.begin(), free.end());
    admit(free);
    compact();
  }

  // With no sample left to start, drops the idle slots once they are at least half of the batch: the
  // live ones move to the front (with static shapes, padded with idle ones to a power of two).
  void compact() {
    const bool nothing_left = ready_.empty() && next_prompt_ >= end_prompt_;
    const int64_t live = active_count();
    if (!o_.compact || !nothing_left || live == 0 || (A_ - live) * 2 < A_) return;
    const int64_t batch = static_shapes_ ? bucket_rows(live, slots_) : live;
    if (batch >= A_) return;
    std::vector<int64_t> keep, idle;
    int64_t used = 1;
    for (int64_t s = 0; s < A_; ++s) {
      if (sample_of_[static_cast<size_t>(s)] < 0) {
        idle.push_back(s);
        continue;
      }
      keep.push_back(s);
      used = std::max(used, wbound_[static_cast<size_t>(s)] + 1);
    }
    keep.insert(keep.end(), idle.begin(), idle.begin() + (batch - live));
    std::sort(keep.begin(), keep.end());  // slot keep[i] moves to i <= keep[i]
    at::Tensor idx = torch::tensor(keep, torch::kLong).to(dev_);
    cache_.move_rows_to_front(idx, used);
    for (at::Tensor* t : {&tok_, &pos_, &widx_, &key_, &t_, &eos_fin_, &bias_, &out_ids_, &out_lp_}) {
      at::Tensor moved = t->index_select(0, idx);
      t->narrow(0, 0, batch).copy_(moved);
    }
    auto pick = [&](std::vector<int64_t>& v) {
      std::vector<int64_t> kept;
      for (int64_t s : keep) kept.push_back(v[static_cast<size_t>(s)]);
      v = kept;
    };
    pick(sample_of_);
    pick(wbound_);
    pick(tbound_);
    A_ = static_cast<int64_t>(keep.size());
  }

  // First: made before (on CUDA: switches to its capture stream, on which the engine allocates and
  // works) and destroyed after every tensor of the engine (then hands the work back to the caller's
  // stream).
  DecodeGraphs graphs_;
  CausalLMImpl& m_;
  GenerationJob& job_;
  int64_t next_prompt_, end_prompt_;  // this engine's prompts not started yet
  const GenerateOptions& o_;
  at::Device dev_;
  int64_t A_, slots_, N_, C_;  // A_: the slots a step runs on (the first A_ of slots_)
  bool static_shapes_ = false;
  at::ScalarType cache_dtype_ = at::kFloat;
  KVCache cache_;
  // Per slot, on the device: the token to feed (A, 1), its rotary position (A, 1), its cache column,
  // the random stream's key, tokens generated, whether EOS came, the key bias (A, C) and the output
  // ids / log-probs (A, N + 1).
  at::Tensor tok_, pos_, widx_, key_, t_, eos_fin_, bias_, out_ids_, out_lp_, eos_;
  // Per slot, on the host: its sample (prompt * n + sample; -1 = idle) and upper bounds of its cache
  // column and token count (known without a sync: each step adds one).
  std::vector<int64_t> sample_of_, wbound_, tbound_;
  std::deque<ReadyPrompt> ready_;
};

}  // namespace

at::ScalarType decode_cache_dtype(CausalLMImpl& model) {
  return autocast_enabled(model.device()) ? at::kBFloat16 : model.dtype();
}

int64_t run_decode_engine(CausalLMImpl& model, GenerationJob& job, int64_t slots, int64_t first_prompt,
                          int64_t end_prompt) {
  torch::NoGradGuard no_grad;
  Engine engine(model, job, std::max<int64_t>(1, slots), first_prompt, end_prompt);
  engine.run();
  return engine.graphs_captured();
}

}  // namespace tinyzero
