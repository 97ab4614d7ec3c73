// Exit codes for exceptions (see errors.h).
#include "tinyzero/core/errors.h"

namespace tinyzero {

int exit_code_for(const std::exception& e) noexcept {
  if (const auto* stopped = dynamic_cast<const StoppedBySignal*>(&e)) return 128 + stopped->signal();
  if (dynamic_cast<const ConfigError*>(&e) || dynamic_cast<const UsageError*>(&e)) return 2;
  return 1;
}

}  // namespace tinyzero
