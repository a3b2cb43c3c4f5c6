// The compile pipeline in one place: each later pass is added here, and both llmc and llmc-opt run it.
#include "compiler/Pipeline.h"

#include "compiler/Passes.h"
#include "passes/Passes.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

namespace llmc {

std::string CompileOptions::formatName() const {
  return quant == Quant::Q8 ? "q8" : (asymmetric ? "q4a" : "q4");
}

std::vector<std::string> CompileOptions::keepRules() const {
  std::vector<std::string> k = keep;
  if (quant == Quant::Q4) {
    // Default mixed precision: the embedding table (and a tied or untied
    // LM head) is the most sensitive matrix and costs little at q8.
    k.push_back("model.embed_tokens.weight=q8");
    k.push_back("lm_head.weight=q8");
  }
  return k;
}

llvm::Error checkOptions(const CompileOptions &o) {
  auto err = [](const llvm::Twine &m) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), m);
  };
  const bool quantize = o.quant != CompileOptions::Quant::None;
  const char *method = o.method == CompileOptions::Method::GPTQ ? "gptq" : "awq";
  if (o.method != CompileOptions::Method::RTN) {
    if (!quantize) {
      return err(llvm::Twine("--quant-method ") + method + " needs --q4 or --q8");
    }
    if (!o.hasCalibration) {
      return err(llvm::Twine("--quant-method ") + method +
                 " needs calibration text: --calib FILE");
    }
  } else if (o.hasCalibration) {
    return err("--calib is only used by --quant-method gptq or awq");
  }
  // The artifact reader takes groups of up to 2^16 (runtime/artifact).
  if (o.groupSize <= 0 || o.groupSize % 32 != 0 || o.groupSize > (1 << 16)) {
    return err("--group-size must be a positive multiple of 32 up to 65536, got " +
               llvm::Twine(o.groupSize));
  }
  if (o.asymmetric && o.quant != CompileOptions::Quant::Q4) {
    return err("--asym applies to --q4");
  }
  if (!o.keep.empty() && !quantize) {
    return err("--keep applies to --q4 and --q8");
  }
  if (o.actOrder && o.method != CompileOptions::Method::GPTQ) {
    return err("--act-order applies to --quant-method gptq");
  }
  if (o.maxTokens <= 0) {
    return err("--max-tokens must be positive");
  }
  return llvm::Error::success();
}

void buildCompressionPipeline(mlir::OpPassManager &pm,
                              const CompileOptions &o) {
  std::vector<std::string> keep = o.keepRules();
  auto quantOptions = [&](auto &q) {
    q.format = o.formatName();
    q.groupSize = o.groupSize;
    q.keep.assign(keep.begin(), keep.end());
  };
  if (o.method == CompileOptions::Method::AWQ) {
    AWQPassOptions q;
    quantOptions(q);
    q.progress = o.progress;
    pm.addPass(createAWQPass(q));
  } else if (o.method == CompileOptions::Method::GPTQ) {
    GPTQPassOptions q;
    quantOptions(q);
    q.actOrder = o.actOrder;
    q.progress = o.progress;
    pm.addPass(createGPTQPass(q));
  }
  if (o.quant != CompileOptions::Quant::None) {
    QuantizeWeightsPassOptions q;
    quantOptions(q);
    pm.addPass(createQuantizeWeightsPass(q));
  }
  if (o.toF16) {
    ConvertWeightFormatPassOptions c;
    c.format = "f16";
    pm.addPass(createConvertWeightFormatPass(c));
  }
  // Fusion comes after compression, so keep rules and calibration see the
  // checkpoint's own matrices; it works on any format.
  if (o.fuse) {
    pm.addPass(createFuseProjectionsPass());
  }
  pm.addPass(mlir::createCanonicalizerPass());
}

void buildLoweringPipeline(mlir::OpPassManager &pm, const CompileOptions &o) {
  PlanMemoryPassOptions plan;
  plan.maxTokens = o.maxTokens;
  pm.addPass(createPlanMemoryPass(plan));
  LowerToLLVMPassOptions lower;
  lower.defaultWeights = o.defaultWeights;
  lower.target = o.target;
  pm.addPass(createLowerToLLVMPass(lower));
  pm.addPass(mlir::createSCFToControlFlowPass());
  pm.addPass(mlir::createArithToLLVMConversionPass());
  pm.addPass(mlir::createConvertMathToLLVMPass());
  pm.addPass(mlir::createConvertControlFlowToLLVMPass());
  pm.addPass(mlir::createReconcileUnrealizedCastsPass());
}

namespace {

struct CompressOptions : mlir::PassPipelineOptions<CompressOptions> {
  Option<std::string> format{*this, "format",
                             llvm::cl::desc("none, f16, q8, q4 or q4a"),
                             llvm::cl::init("none")};
  Option<std::string> method{*this, "method",
                             llvm::cl::desc("rtn, gptq or awq (gptq and awq "
                                            "read the llm.calibration tokens)"),
                             llvm::cl::init("rtn")};
  Option<int64_t> groupSize{*this, "group-size",
                            llvm::cl::desc("Elements per quantization group"),
                            llvm::cl::init(32)};
  ListOption<std::string> keep{*this, "keep",
                               llvm::cl::desc("GLOB=FORMAT rules")};
  Option<bool> actOrder{*this, "act-order", llvm::cl::desc("GPTQ act-order"),
                        llvm::cl::init(false)};
  Option<bool> fuse{*this, "fuse", llvm::cl::desc("Fuse projections"),
                    llvm::cl::init(true)};
};

struct LowerOptions : mlir::PassPipelineOptions<LowerOptions> {
  Option<int64_t> maxTokens{*this, "max-tokens",
                            llvm::cl::desc("Most tokens one forward call takes"),
                            llvm::cl::init(512)};
};

} // namespace

void registerPipelines() {
  mlir::PassPipelineRegistration<CompressOptions>(
      "llmc-compress",
      "llmc compile's llm-to-llm passes (quantization, f16, fusion)",
      [](mlir::OpPassManager &pm, const CompressOptions &c) {
        CompileOptions o;
        std::string f = c.format;
        o.quant = f == "q8"                 ? CompileOptions::Quant::Q8
                  : f == "q4" || f == "q4a" ? CompileOptions::Quant::Q4
                                            : CompileOptions::Quant::None;
        o.asymmetric = f == "q4a";
        o.toF16 = f == "f16";
        std::string m = c.method;
        o.method = m == "gptq"  ? CompileOptions::Method::GPTQ
                   : m == "awq" ? CompileOptions::Method::AWQ
                                : CompileOptions::Method::RTN;
        o.groupSize = c.groupSize;
        o.keep.assign(c.keep.begin(), c.keep.end());
        o.actOrder = c.actOrder;
        o.fuse = c.fuse;
        o.progress = false;
        buildCompressionPipeline(pm, o);
      });
  mlir::PassPipelineRegistration<LowerOptions>(
      "llmc-lower", "llmc compile's lowering of an llm module to LLVM",
      [](mlir::OpPassManager &pm, const LowerOptions &l) {
        CompileOptions o;
        o.maxTokens = l.maxTokens;
        buildLoweringPipeline(pm, o);
      });
}

} // namespace llmc
