// tinyzero-train: the command-line front end. The only main() of the project; all logic lives in the
// library. Exceptions become one-line messages and exit codes: 0 ok, 2 usage/config error, 1 runtime,
// 128 + signal when SIGTERM / SIGINT stopped a run (after a checkpoint).
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/registry.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/core/runtime.h"
#include "tinyzero/dist/process_group.h"

namespace tinyzero::cli {

std::vector<CommandSetup>& command_setups() {
  static std::vector<CommandSetup> setups;
  return setups;
}

}  // namespace tinyzero::cli

int main(int argc, char** argv) {
  tinyzero::keep_freed_memory();
  CLI::App app{
      "tinyzero-train: reinforcement learning (GRPO, PPO) of small language models on Countdown and "
      "multiplication.\n\n"
      "Train:  tinyzero-train --config configs/countdown-3b.yaml [key.path=value ...]\n"
      "Other tasks are subcommands; `tinyzero-train SUBCOMMAND --help` describes each.",
      "tinyzero-train"};
  app.set_version_flag("--version",
                       [] { return tinyzero::version_string() + "\n" + tinyzero::backends_description(); });
  app.require_subcommand(0, 1);
  for (auto& setup : tinyzero::cli::command_setups()) setup(app);
  try {
    app.parse(argc, argv);
    return 0;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "tinyzero-train: error: " << e.what() << " (see --help)\n";
    return 2;
  } catch (const tinyzero::StoppedBySignal& e) {
    std::cerr << "tinyzero-train: " << e.what() << "\n";
    return tinyzero::exit_code_for(e);
  } catch (const std::exception& e) {
    std::cerr << "tinyzero-train: error: " << e.what() << "\n";
    return tinyzero::exit_code_for(e);
  }
}
