// One SFT step (algorithm.name: sft): the cross-entropy of the response tokens of a batch of
// prompt/response pairs, one AdamW step.
#pragma once

#include "tinyzero/metrics/logger.h"

namespace tinyzero {

struct TrainContext;

Metrics sft_step(TrainContext& ctx);

}  // namespace tinyzero
