// Validation: greedy (or rollout.val_temperature) responses to the held-out problems, scored by the
// task's rule; each rank takes its contiguous share and the sums are added over ranks.
#pragma once

#include "tinyzero/metrics/logger.h"

namespace tinyzero {

struct TrainContext;

// val/test_score/<task>, val/success_rate/<task>, val/format_rate/<task>, val/response_length/mean and
// timing_s/validate; with trainer.validation_data_dir, every response as JSONL (step_<N>[.rank<r>].jsonl).
Metrics validate(TrainContext& ctx);

}  // namespace tinyzero
