// Graceful stop on SIGTERM / SIGINT (see stop_signal.h).
#include "tinyzero/core/stop_signal.h"

#include <unistd.h>

#include <csignal>
#include <cstring>

namespace tinyzero {

namespace {

volatile std::sig_atomic_t g_signal = 0;

void on_stop_signal(int signal) {
  if (g_signal != 0) {  // the second one: stop now
    std::signal(signal, SIG_DFL);
    std::raise(signal);
    return;
  }
  g_signal = signal;
  static const char kMessage[] =
      "tinyzero: stop requested; finishing this step and writing a checkpoint (signal again to stop at "
      "once)\n";
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
}

}  // namespace

void install_stop_handlers() {
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // interrupted reads and writes go on
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

int stop_signal() { return g_signal; }

const char* stop_signal_name(int signal) {
  switch (signal) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    default:
      return "a signal";
  }
}

}  // namespace tinyzero
