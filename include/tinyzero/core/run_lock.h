// One run per run_dir: an exclusive flock(2) on run_dir/.lock, held for the life of the run and released
// by the kernel when the process ends, however it ends. The file names its holder (PID and host) so a
// second run can say who has it. In a multi-rank run, rank 0 holds it.
#pragma once

#include <string>

namespace tinyzero {

class RunDirLock {
 public:
  RunDirLock() = default;
  // Creates `run_dir` if needed and locks it. Throws ConfigError "trainer.run_dir '...' is in use by PID N
  // on HOST" when another process (or another lock in this one) holds it, IoError when it cannot be locked.
  static RunDirLock acquire(const std::string& run_dir);
  ~RunDirLock();
  RunDirLock(RunDirLock&& other) noexcept;
  RunDirLock& operator=(RunDirLock&& other) noexcept;
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;

  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace tinyzero
