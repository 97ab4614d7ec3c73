// A graceful stop on SIGTERM and SIGINT (SLURM preemption, spot nodes, Ctrl-C): the first signal only
// records itself, and the training loop stops after the current step with a checkpoint; a second one
// ends the process at once, by the signal's default action.
#pragma once

namespace tinyzero {

// Installs the handlers (idempotent).
void install_stop_handlers();
// The first stop signal received (SIGTERM, SIGINT), or 0.
int stop_signal();
// "SIGTERM", "SIGINT", or "signal N".
const char* stop_signal_name(int signal);

}  // namespace tinyzero
