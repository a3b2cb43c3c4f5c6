// The command line of an emitted model executable (and of llmc-run).
#ifndef LLMC_RUNTIME_MAIN_CLI_H
#define LLMC_RUNTIME_MAIN_CLI_H

#include "llmc/program.h"

namespace llmc {

/// Runs the CLI. `embedded` says the weights are appended to this executable
/// (so --weights is optional); otherwise --weights is required.
int runCli(int argc, char **argv, const llmc_program *program, bool embedded);

} // namespace llmc

#endif // LLMC_RUNTIME_MAIN_CLI_H
