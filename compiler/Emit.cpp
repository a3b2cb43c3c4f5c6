// LLVM IR translation, the O3 pipeline, object emission with TargetMachine, and the link step.
#include "compiler/Emit.h"

#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"
#include "llvm/TargetParser/Triple.h"

namespace llmc {

namespace {

llvm::Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

llvm::Expected<std::unique_ptr<llvm::TargetMachine>>
makeTargetMachine(const TargetOptions &target) {
  LLVMInitializeX86TargetInfo();
  LLVMInitializeX86Target();
  LLVMInitializeX86TargetMC();
  LLVMInitializeX86AsmPrinter();
  llvm::Triple triple("x86_64-unknown-linux-gnu");
  std::string err;
  const llvm::Target *t = llvm::TargetRegistry::lookupTarget(triple, err);
  if (!t) {
    return error("no x86-64 target in this LLVM: " + err);
  }
  std::string cpu = target.cpu;
  std::string features;
  if (cpu == "native") {
    cpu = llvm::sys::getHostCPUName().str();
    llvm::SubtargetFeatures f;
    for (const auto &kv : llvm::sys::getHostCPUFeatures()) {
      f.AddFeature(kv.getKey(), kv.getValue());
    }
    features = f.getString();
  }
  llvm::TargetOptions opts;
  std::unique_ptr<llvm::TargetMachine> tm(t->createTargetMachine(
      triple, cpu, features, opts, llvm::Reloc::PIC_, std::nullopt,
      llvm::CodeGenOptLevel::Aggressive));
  if (!tm) {
    return error("cannot create a target machine for CPU '" + cpu + "'");
  }
  return tm;
}

} // namespace

llvm::Expected<int64_t> vectorFloats(const TargetOptions &target) {
  auto tm = makeTargetMachine(target);
  if (!tm) {
    return tm.takeError();
  }
  const llvm::MCSubtargetInfo *sti = (*tm)->getMCSubtargetInfo();
  if (sti->checkFeatures("+avx512f")) {
    return 16;
  }
  return sti->checkFeatures("+avx") ? 8 : 4;
}

llvm::Expected<std::unique_ptr<llvm::Module>>
translateAndOptimize(mlir::ModuleOp module, llvm::LLVMContext &context,
                     const TargetOptions &target) {
  mlir::DialectRegistry registry;
  mlir::registerBuiltinDialectTranslation(registry);
  mlir::registerLLVMDialectTranslation(registry);
  module->getContext()->appendDialectRegistry(registry);
  std::unique_ptr<llvm::Module> m =
      mlir::translateModuleToLLVMIR(module, context, "llmc_model");
  if (!m) {
    return error("translation to LLVM IR failed");
  }
  auto tm = makeTargetMachine(target);
  if (!tm) {
    return tm.takeError();
  }
  m->setTargetTriple((*tm)->getTargetTriple());
  m->setDataLayout((*tm)->createDataLayout());

  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(tm->get());
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::ModulePassManager mpm =
      pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3);
  mpm.run(*m, mam);
  return m;
}

llvm::Error emitObject(llvm::Module &module, const TargetOptions &target,
                       const std::string &path) {
  auto tm = makeTargetMachine(target);
  if (!tm) {
    return tm.takeError();
  }
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
  if (ec) {
    return error(path + ": cannot write: " + ec.message());
  }
  llvm::legacy::PassManager pm;
  if ((*tm)->addPassesToEmitFile(pm, os, nullptr,
                                 llvm::CodeGenFileType::ObjectFile)) {
    return error("this target cannot emit object files");
  }
  pm.run(module);
  os.flush();
  if (os.has_error()) {
    // Cleared, or the stream's destructor would abort the process.
    std::error_code ec = os.error();
    os.clear_error();
    return error(path + ": cannot write: " + ec.message());
  }
  return llvm::Error::success();
}

std::string runtimeLibraryDir() {
  static int anchor;
  std::string exe = llvm::sys::fs::getMainExecutable("llmc", &anchor);
  llvm::SmallString<256> dir(llvm::sys::path::parent_path(exe));
  llvm::sys::path::append(dir, "..", "lib");
  llvm::sys::path::remove_dots(dir, /*remove_dot_dot=*/true);
  llvm::SmallString<256> probe(dir);
  llvm::sys::path::append(probe, "libllmc_runtime.a");
  if (llvm::sys::fs::exists(probe)) {
    return std::string(dir);
  }
  return LLMC_RUNTIME_LIB_DIR;
}

bool cudaBackendAvailable() {
#ifdef LLMC_CUDA_ARCHS
  return true;
#else
  return false;
#endif
}

llvm::Error checkCudaArchs(const std::string &archs) {
#ifdef LLMC_CUDA_ARCHS
  llvm::SmallVector<llvm::StringRef> built, asked;
  llvm::StringRef(LLMC_CUDA_ARCHS).split(built, ',', -1, false);
  llvm::StringRef(archs).split(asked, ',', -1, false);
  std::string list;
  for (llvm::StringRef b : built) {
    list += (list.empty() ? "sm_" : ", sm_") + b.str();
  }
  for (llvm::StringRef a : asked) {
    a = a.trim();
    llvm::StringRef num = a;
    if (!num.consume_front("sm_") || !llvm::is_contained(built, num)) {
      return error("--cuda-arch '" + a.str() + "': this llmc's kernels are "
                   "built for " + list + " (LLMC_CUDA_ARCHITECTURES)");
    }
  }
  return llvm::Error::success();
#else
  (void)archs;
  return error("this llmc was built without the CUDA backend");
#endif
}

llvm::Error linkExecutable(const std::string &objectPath,
                           const std::string &exePath, bool cuda) {
  std::string cxx;
  if (const char *env = std::getenv("CXX"); env && *env) {
    cxx = env;
  } else {
    cxx = "c++";
  }
  auto prog = llvm::StringRef(cxx).contains('/')
                  ? llvm::ErrorOr<std::string>(cxx)
                  : llvm::sys::findProgramByName(cxx);
  if (!prog || !llvm::sys::fs::can_execute(*prog)) {
    return error("cannot find the C++ driver '" + cxx +
                 "' to link with (set CXX)");
  }
  std::string libDir = runtimeLibraryDir();
  std::vector<std::string> args = {*prog, objectPath, "-o", exePath,
                                   "-L" + libDir};
  if (cuda) {
#ifdef LLMC_CUDART_STATIC
    // main() registers the backend; libcudart_static needs only the driver.
    for (const char *a : {"-lllmc_runtime_cuda_main", "-lllmc_runtime_cuda",
                          "-lllmc_runtime", LLMC_CUDART_STATIC, "-ldl", "-lrt"}) {
      args.push_back(a);
    }
#else
    return error("this llmc was built without the CUDA backend");
#endif
  } else {
    args.push_back("-lllmc_runtime_main");
    args.push_back("-lllmc_runtime");
  }
#ifdef LLMC_SANITIZE_LINK
  // The runtime was built with ASan + UBSan (LLMC_SANITIZE): so is the
  // executable, with the sanitizers' runtimes (which need a shared libstdc++).
  args.push_back("-fsanitize=address,undefined");
#else
  args.push_back("-static-libstdc++");
  args.push_back("-static-libgcc");
#endif
  args.push_back("-pthread");
  args.push_back("-lm");
  std::vector<llvm::StringRef> argRefs(args.begin(), args.end());
  std::string errMsg;
  int rc = llvm::sys::ExecuteAndWait(*prog, argRefs, std::nullopt, {}, 0, 0,
                                     &errMsg);
  if (rc != 0) {
    return error("linking with " + *prog + " failed" +
                 (errMsg.empty() ? "" : ": " + errMsg) + " (runtime from " +
                 libDir + ")");
  }
  return llvm::Error::success();
}

} // namespace llmc
