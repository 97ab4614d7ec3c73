// CUDA graphs of the decode step (see decode_engine.cpp).
//
// A decode step launches about a thousand small kernels; at small batch a GPU spends more time on their
// launches than on their work. The engine's step reads and writes only tensors that keep their storage
// for the whole call, in one of a few shapes (rows, attention width), so each shape's step is captured
// once as a CUDA graph and then replayed: one launch per step. The first step of a shape runs eagerly
// (warming up cuBLAS and lazily made tensors), then is captured without running. The graphs share one
// memory pool (they never run at once) and live as long as the call, so weights changed by an update
// are picked up by the next call's fresh captures. On the CPU, or when not asked for, run() just calls
// the step.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <memory>

namespace tinyzero {

class DecodeGraphs {
 public:
  // Active when `wanted`, this build has CUDA and `device` is a CUDA device. While active, the calling
  // thread's current stream is a stream of its own (captures need one other than the default), which
  // first waits for the caller's stream; the destructor makes the caller's stream wait for it and
  // makes it current again.
  DecodeGraphs(bool wanted, const c10::Device& device);
  ~DecodeGraphs();
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;

  bool active() const { return impl_ != nullptr; }
  // Runs `step` for the shape (rows, width): the device work only, the same tensors every time for a
  // shape, no host synchronisation. Throws Error naming rollout.cuda_graphs when a capture fails.
  void run(int64_t rows, int64_t width, const std::function<void()>& step);
  int64_t captured() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tinyzero
