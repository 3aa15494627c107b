// `warden pipeline ...`: placeholder until the pipeline part lands (issue 7).
#include "cli.h"

namespace warden::cli {

void add_pipeline_commands(CLI::App& group, RunContext& context) {
  add_pipeline_work_commands(group, context);
}

}  // namespace warden::cli
