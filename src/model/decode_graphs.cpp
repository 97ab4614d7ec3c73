// CUDA graphs of the decode step (see decode_graphs.h).
#include "decode_graphs.h"

#include <map>
#include <optional>
#include <string>
#include <utility>

#include "tinyzero/core/errors.h"

#ifdef TZ_HAVE_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace tinyzero {

#ifdef TZ_HAVE_CUDA
namespace {
// Work queued on `waiter` from now on starts after what is queued on `first` so far.
void wait_for(const c10::cuda::CUDAStream& waiter, const c10::cuda::CUDAStream& first) {
  at::cuda::CUDAEvent done;
  done.record(first);
  done.block(waiter);
}
}  // namespace

struct DecodeGraphs::Impl {
  explicit Impl(const c10::Device& device)
      : caller(c10::cuda::getCurrentCUDAStream(device.index())),
        side(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index())),
        pool(at::cuda::graph_pool_handle()) {
    wait_for(side, caller);  // what the caller queued (weights, prompts) comes first
    guard.emplace(side);
  }
  ~Impl() {
    graphs.clear();  // before the pool's memory goes back
    wait_for(caller, side);
    guard.reset();
  }
  c10::cuda::CUDAStream caller, side;
  std::optional<c10::cuda::CUDAStreamGuard> guard;
  at::cuda::MempoolId_t pool;
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<at::cuda::CUDAGraph>> graphs;
};

DecodeGraphs::DecodeGraphs(bool wanted, const c10::Device& device) {
  if (wanted && device.is_cuda()) impl_ = std::make_unique<Impl>(device);
}

void DecodeGraphs::run(int64_t rows, int64_t width, const std::function<void()>& step) {
  if (!impl_) return step();
  auto& graph = impl_->graphs[{rows, width}];
  if (graph) return graph->replay();
  step();  // this step, eagerly: the warm-up
  graph = std::make_unique<at::cuda::CUDAGraph>();
  try {
    // Thread-local mode: other threads (a process group's watchdog) may go on using CUDA meanwhile.
    graph->capture_begin(impl_->pool, cudaStreamCaptureModeThreadLocal);
    step();  // recorded, not run
    graph->capture_end();
  } catch (const std::exception& e) {
    try {
      graph->capture_end();  // ends the capture (and the pool's allocations) that the failure left open
    } catch (const std::exception&) {  // the capture was invalidated: that is the error reported below
    }
    graph.reset();
    throw Error(std::string("capturing the decode step (") + std::to_string(rows) + " rows, " +
                std::to_string(width) + " cache columns) as a CUDA graph failed: " + e.what() +
                "; run without graphs: rollout.cuda_graphs=false");
  }
}

int64_t DecodeGraphs::captured() const { return impl_ ? static_cast<int64_t>(impl_->graphs.size()) : 0; }
#else
struct DecodeGraphs::Impl {};

DecodeGraphs::DecodeGraphs(bool, const c10::Device&) {}

void DecodeGraphs::run(int64_t, int64_t, const std::function<void()>& step) { step(); }

int64_t DecodeGraphs::captured() const { return 0; }
#endif

DecodeGraphs::~DecodeGraphs() = default;

}  // namespace tinyzero
