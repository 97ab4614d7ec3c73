// `tinyzero-train config reference|print`: the config reference (Markdown) and the defaults.
#include <iostream>

#include "cli/registry.h"
#include "tinyzero/core/config.h"

namespace tinyzero::cli {
namespace {

CommandRegistration reg([](CLI::App& app) {
  auto* config = app.add_subcommand("config", "Describe the configuration keys");
  config->require_subcommand(1);
  config
      ->add_subcommand("reference",
                       "Print every config key with its type, default and description (Markdown)")
      ->callback([] { std::cout << config_reference_markdown(); });
  config->add_subcommand("defaults", "Print the default config as YAML")->callback([] {
    std::cout << dump_config(TrainConfig{});
  });
});

}  // namespace
}  // namespace tinyzero::cli
