// Where this process sits in a data-parallel job, read from the launcher's environment variables.
//
// Sources, in order of precedence:
//   torchrun (and scripts/launch-local.sh): RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
//     MASTER_ADDR, MASTER_PORT (RANK and WORLD_SIZE mark the source; LOCAL_* default to one node),
//     TORCHELASTIC_USE_AGENT_STORE and TORCHELASTIC_RESTART_COUNT;
//   SLURM (srun): SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE (or the first
//     count of SLURM_TASKS_PER_NODE); MASTER_ADDR else SLURM_LAUNCH_NODE_IPADDR; MASTER_PORT else 29500;
//   neither: a single process (rank 0 of 1).
#pragma once

#include <string>

namespace tinyzero {

struct DistEnv {
  int rank = 0;                   // global rank, 0 .. world_size - 1
  int world_size = 1;             // processes in the job
  int local_rank = 0;             // rank on this node: picks the GPU (cuda:<local_rank>)
  int local_world_size = 1;       // processes on this node
  std::string master_addr;        // host of rank 0's TCPStore ("" for a single process)
  int master_port = 0;            // its port (0 for a single process)
  std::string source = "single";  // where the values came from: "torchrun" | "slurm" | "single"
  // torchrun's agent already serves the TCPStore at MASTER_ADDR:MASTER_PORT
  // (TORCHELASTIC_USE_AGENT_STORE=True): every rank connects as a client, under the prefix of this restart
  // (TORCHELASTIC_RESTART_COUNT).
  bool use_agent_store = false;
  int restart_count = 0;

  bool is_distributed() const { return world_size > 1; }
  bool is_main() const { return rank == 0; }
};

// Reads the variables above. Throws ConfigError naming the variable, its value and the fix when one is
// garbled (not an integer, out of range) or inconsistent (RANK without WORLD_SIZE, RANK >= WORLD_SIZE,
// a multi-process job without MASTER_ADDR/MASTER_PORT).
DistEnv detect_dist_env();

// One line for logs: "rank 1/4 (local 1/2) via torchrun, rendezvous 10.0.0.1:29500" or "single process".
std::string describe(const DistEnv& env);

}  // namespace tinyzero
