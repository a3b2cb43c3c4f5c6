// llmc: the compiler driver. `llmc compile CKPT` walks the stage ladder up to --emit.
#include "compiler/Checkpoint.h"
#include "compiler/Importer.h"
#include "dialects/llm/LLMDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;

namespace {

cl::SubCommand compileCmd("compile",
                          "Compile a Hugging Face LLaMA checkpoint");

cl::OptionCategory compileCat("compile options");

cl::opt<std::string> checkpointPath(
    cl::Positional, cl::desc("<checkpoint dir or .safetensors file>"),
    cl::Required, cl::sub(compileCmd), cl::cat(compileCat));

cl::opt<std::string> outputPath("o", cl::desc("Output file ('-' for stdout)"),
                                cl::value_desc("path"), cl::init("-"),
                                cl::sub(compileCmd), cl::cat(compileCat));

enum class EmitKind { MLIR };
cl::opt<EmitKind> emitKind(
    "emit", cl::desc("The last stage to run and what to write"),
    cl::values(clEnumValN(EmitKind::MLIR, "mlir",
                          "the imported module in the llm dialect")),
    cl::init(EmitKind::MLIR), cl::sub(compileCmd), cl::cat(compileCat));

cl::opt<bool> elideWeights(
    "elide-weights",
    cl::desc("Print weight blobs as dense_resource<__elided__> (with "
             "--emit=mlir)"),
    cl::init(false), cl::sub(compileCmd), cl::cat(compileCat));

cl::opt<int64_t> maxSeqLen(
    "max-seq",
    cl::desc("Context length to plan for (default: the config's "
             "max_position_embeddings)"),
    cl::value_desc("tokens"), cl::init(0), cl::sub(compileCmd),
    cl::cat(compileCat));

int fail(const Twine &message) {
  WithColor::error(errs(), "llmc") << message << "\n";
  return 1;
}

int runCompile() {
  if (maxSeqLen < 0) {
    return fail("--max-seq must be positive");
  }
  auto ckpt = llmc::Checkpoint::open(checkpointPath);
  if (!ckpt) {
    return fail(toString(ckpt.takeError()));
  }
  mlir::MLIRContext context;
  auto module = llmc::importCheckpoint(context, **ckpt, maxSeqLen);
  if (!module) {
    return fail(toString(module.takeError()));
  }

  mlir::OpPrintingFlags flags;
  if (elideWeights) {
    flags.elideLargeResourceString(0);
  }
  Error err = writeToOutput(outputPath, [&](raw_ostream &os) -> Error {
    (**module)->print(os, flags);
    os << "\n";
    return Error::success();
  });
  if (err) {
    return fail(outputPath + ": " + toString(std::move(err)));
  }
  return 0;
}

void printVersion(raw_ostream &os) {
  os << "llmc " << LLMC_VERSION << " (MLIR/LLVM " << LLVM_VERSION_STRING
     << ")\n";
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM y(argc, argv);
  cl::SetVersionPrinter(printVersion);
  cl::HideUnrelatedOptions({&compileCat});
  cl::ParseCommandLineOptions(
      argc, argv,
      "llmc: an ahead-of-time compiler for LLaMA-family models\n\n"
      "  llmc compile CKPT [-o OUT] [--emit=mlir]\n"
      "  llmc <command> --help   lists the options of a command\n");
  if (compileCmd) {
    return runCompile();
  }
  errs() << "llmc: no command given; try 'llmc --help'\n";
  return 1;
}
