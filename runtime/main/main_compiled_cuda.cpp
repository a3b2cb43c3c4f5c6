// main() of an executable compiled with --target cuda: registers the CUDA backend, then runs the CLI.
#include "runtime/core/gpu.h"
#include "runtime/cuda/backend.h"
#include "runtime/main/cli.h"

extern "C" const llmc_program llmc_compiled_program;

int main(int argc, char **argv) {
  llmc::gpu::setGpuBackend(&llmc::cuda::createSession);
  return llmc::runCli(argc, argv, &llmc_compiled_program, /*embedded=*/true);
}
