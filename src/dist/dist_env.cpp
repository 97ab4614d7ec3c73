// Reads the launcher's environment (torchrun, SLURM) into a DistEnv; see dist_env.h for the rules.
#include "tinyzero/dist/dist_env.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <string>

#include "tinyzero/core/errors.h"

namespace tinyzero {
namespace {

constexpr int kDefaultMasterPort = 29500;

const char* get(const char* name) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : nullptr;
}

// Whole-string decimal integer in [lo, hi]; `what` says what the variable should hold.
int parse_int(const char* name, const char* value, long lo, long hi, const std::string& what) {
  std::string s(value);
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(s.c_str(), &end, 10);
  bool ok = !s.empty() && end == s.c_str() + s.size() && errno == 0 &&
            (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-');
  if (!ok)
    throw ConfigError(std::string("environment variable ") + name + "='" + s +
                      "' is not an integer; set it to " + what + " (or unset it)");
  if (v < lo || v > hi)
    throw ConfigError(std::string("environment variable ") + name + "=" + s + " is out of range [" +
                      std::to_string(lo) + ", " + std::to_string(hi) + "]; set it to " + what);
  return static_cast<int>(v);
}

// Leading count of SLURM_TASKS_PER_NODE ("4(x2),3" -> 4); 0 when absent or unreadable.
int leading_count(const char* value) {
  if (!value) return 0;
  int n = 0;
  for (const char* p = value; *p >= '0' && *p <= '9'; ++p) {
    n = n * 10 + (*p - '0');
    if (n > 1000000) return 0;
  }
  return n;
}

void fill_master(DistEnv& env, const char* addr_fallback, bool port_default) {
  const char* addr = get("MASTER_ADDR");
  if (!addr) addr = addr_fallback;
  const char* port = get("MASTER_PORT");
  if (env.world_size > 1 && !addr)
    throw ConfigError("the job has " + std::to_string(env.world_size) + " processes (from " + env.source +
                      ") but MASTER_ADDR is not set; set MASTER_ADDR to the host of rank 0 (torchrun and "
                      "scripts/launch-local.sh set it)");
  if (env.world_size > 1 && !port && !port_default)
    throw ConfigError("the job has " + std::to_string(env.world_size) + " processes (from " + env.source +
                      ") but MASTER_PORT is not set; set MASTER_PORT to a free TCP port on rank 0's host "
                      "(torchrun and scripts/launch-local.sh set it)");
  if (addr) env.master_addr = addr;
  if (port)
    env.master_port = parse_int("MASTER_PORT", port, 1, 65535, "a free TCP port on rank 0's host");
  else if (env.world_size > 1 || addr)
    env.master_port = kDefaultMasterPort;
}

void fill_local(DistEnv& env, const char* rank_name, const char* local_rank, const char* lws_name,
                int local_world) {
  env.local_world_size = local_world > 0 ? local_world : env.world_size;
  if (env.local_world_size > env.world_size)
    throw ConfigError(std::string(lws_name) + "=" + std::to_string(env.local_world_size) +
                      " is larger than the world size " + std::to_string(env.world_size) +
                      "; it must count only this node's processes");
  if (local_rank) {
    env.local_rank =
        parse_int(rank_name, local_rank, 0, env.local_world_size - 1,
                  "this process's index on its node, 0 .. " + std::to_string(env.local_world_size - 1));
  } else {
    env.local_rank = env.rank % env.local_world_size;
  }
}

DistEnv from_torchrun() {
  DistEnv env;
  env.source = "torchrun";
  const char* rank = get("RANK");
  const char* world = get("WORLD_SIZE");
  if (!rank || !world)
    throw ConfigError(std::string(rank ? "RANK is set (" + std::string(rank) + ") but WORLD_SIZE is not"
                                       : "WORLD_SIZE is set (" + std::string(world) + ") but RANK is not") +
                      "; set both (with MASTER_ADDR and MASTER_PORT) for a multi-process run, or neither "
                      "for a single process");
  env.world_size = parse_int("WORLD_SIZE", world, 1, 1 << 20, "the number of processes of the job");
  env.rank = parse_int("RANK", rank, 0, env.world_size - 1,
                       "this process's rank, 0 .. WORLD_SIZE-1 = " + std::to_string(env.world_size - 1));
  int lws = 0;
  if (const char* v = get("LOCAL_WORLD_SIZE"))
    lws = parse_int("LOCAL_WORLD_SIZE", v, 1, env.world_size, "the number of processes on this node");
  fill_local(env, "LOCAL_RANK", get("LOCAL_RANK"), "LOCAL_WORLD_SIZE", lws);
  fill_master(env, nullptr, false);
  // As torch.distributed reads them (rendezvous.py): only the exact string "True" turns the agent's store on.
  if (const char* v = get("TORCHELASTIC_USE_AGENT_STORE")) env.use_agent_store = std::string(v) == "True";
  if (const char* v = get("TORCHELASTIC_RESTART_COUNT"))
    env.restart_count = parse_int("TORCHELASTIC_RESTART_COUNT", v, 0, 1 << 30, "torchrun's restart count");
  return env;
}

DistEnv from_slurm() {
  DistEnv env;
  env.source = "slurm";
  const char* ntasks = get("SLURM_NTASKS");
  if (!ntasks)
    throw ConfigError(std::string("SLURM_PROCID is set (") + get("SLURM_PROCID") +
                      ") but SLURM_NTASKS is not; launch with srun --ntasks=N, or set RANK/WORLD_SIZE/"
                      "MASTER_ADDR/MASTER_PORT yourself");
  env.world_size = parse_int("SLURM_NTASKS", ntasks, 1, 1 << 20, "the number of tasks (srun --ntasks)");
  env.rank = parse_int("SLURM_PROCID", get("SLURM_PROCID"), 0, env.world_size - 1,
                       "this task's rank, 0 .. SLURM_NTASKS-1");
  int lws = 0;
  if (const char* v = get("SLURM_NTASKS_PER_NODE"))
    lws = parse_int("SLURM_NTASKS_PER_NODE", v, 1, env.world_size, "the number of tasks per node");
  else
    lws = std::min(leading_count(get("SLURM_TASKS_PER_NODE")), env.world_size);
  fill_local(env, "SLURM_LOCALID", get("SLURM_LOCALID"), "SLURM_NTASKS_PER_NODE", lws);
  fill_master(env, get("SLURM_LAUNCH_NODE_IPADDR"), true);
  return env;
}

}  // namespace

DistEnv detect_dist_env() {
  if (get("RANK") || get("WORLD_SIZE")) return from_torchrun();
  if (get("SLURM_PROCID")) return from_slurm();
  return DistEnv{};
}

std::string describe(const DistEnv& env) {
  if (!env.is_distributed()) return "single process";
  return "rank " + std::to_string(env.rank) + "/" + std::to_string(env.world_size) + " (local " +
         std::to_string(env.local_rank) + "/" + std::to_string(env.local_world_size) + ") via " + env.source +
         ", rendezvous " + env.master_addr + ":" + std::to_string(env.master_port);
}

}  // namespace tinyzero
