// llmc-run: runs any artifact with the reference evaluator (no compiled code).
#include "llmc/runtime.h"
#include "runtime/main/cli.h"

int main(int argc, char **argv) {
  return llmc::runCli(argc, argv, llmc_reference_program(), /*embedded=*/false);
}
