// main() of an emitted executable: the compiled program with its appended weights.
#include "runtime/main/cli.h"

extern "C" const llmc_program llmc_compiled_program;

int main(int argc, char **argv) {
  return llmc::runCli(argc, argv, &llmc_compiled_program, /*embedded=*/true);
}
