// Checkpoints of a run: run_dir/checkpoints/step_<N>, each a Hugging Face directory of the actor (it
// loads in transformers as is) with the AdamW state (optimizer-rank<r>-of-<n>.safetensors, each rank's
// part: state_files.h), the critic (PPO) and its state, the resolved config and trainer_state.json (the
// counters, the data cursor, the KL coefficient), written last: its presence marks a complete
// checkpoint. Written into a staging directory and renamed into place.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tinyzero {

struct TrainContext;

// "step_00000042".
std::string checkpoint_name(int64_t step);
// Complete checkpoints under run_dir/checkpoints, newest first: (step, path).
std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& run_dir);

// Writes the checkpoint of ctx.step, prunes to trainer.keep_last, and returns its directory. Every rank
// checks that its copy is identical and writes its part of sharded optimizer state; rank 0 writes the
// weights and completes the checkpoint once every part is written. When any rank fails (a full disk),
// the staging directory is removed and every rank throws IoError naming the failure.
std::string save_checkpoint(TrainContext& ctx);
// Restores the model(s), optimizer state(s), data cursor, KL coefficient and counters from `dir`.
void load_checkpoint(TrainContext& ctx, const std::string& dir);
// trainer.resume: auto (the newest complete checkpoint, falling back to older ones when it cannot be
// loaded), off, or a checkpoint directory. A no-op when there is nothing to resume.
void resume(TrainContext& ctx);

}  // namespace tinyzero
