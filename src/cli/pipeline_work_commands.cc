// `warden pipeline work|reprocess-failed`: placeholder until the pipeline worker lands.
#include "cli.h"

namespace warden::cli {

void add_pipeline_work_commands(CLI::App& group, RunContext& context) {
  (void)group;
  (void)context;
}

}  // namespace warden::cli
