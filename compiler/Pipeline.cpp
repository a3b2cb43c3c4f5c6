// The compile pipeline in one place: each later pass is added here, and both llmc and llmc-opt run it.
#include "compiler/Pipeline.h"

#include "compiler/Passes.h"
#include "passes/Passes.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Conversion/VectorToLLVM/ConvertVectorToLLVMPass.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

#include <cmath>

namespace llmc {

std::string CompileOptions::formatName() const {
  return quant == Quant::Q8 ? "q8" : (asymmetric ? "q4a" : "q4");
}

std::string CompileOptions::effectivePruneMethod() const {
  if (!pruneMethod.empty()) {
    return pruneMethod;
  }
  return pruneStructured > 0 ? "flap" : "wanda";
}

bool CompileOptions::needsCalibration() const {
  std::string m = effectivePruneMethod();
  bool prunes = pruneStructured > 0 || unstructuredPruning();
  return method != Method::RTN ||
         (prunes && (m == "flap" || m == "wanda-sp" || m == "wanda")) ||
         llvm::StringRef(lowrank).starts_with("auto=");
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

std::string fmtNum(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

llvm::Error checkOptions(const CompileOptions &o) {
  auto err = [](const llvm::Twine &m) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), m);
  };
  const bool quantize = o.quant != CompileOptions::Quant::None;
  const char *method = o.method == CompileOptions::Method::GPTQ ? "gptq" : "awq";
  for (const std::string &f : o.disabledFusions) {
    if (llvm::find(llvm::ArrayRef(kFusionNames), llvm::StringRef(f)) ==
        std::end(kFusionNames)) {
      return err("--disable-fusion: unknown fusion '" + llvm::Twine(f) +
                 "' (projections, swiglu, residual, rope, norm, lm-head)");
    }
  }
  if (o.method != CompileOptions::Method::RTN) {
    if (!quantize) {
      return err(llvm::Twine("--quant-method ") + method + " needs --q4 or --q8");
    }
    if (!o.hasCalibration) {
      return err(llvm::Twine("--quant-method ") + method +
                 " needs calibration text: --calib FILE");
    }
  }
  const bool structured = o.pruneStructured != 0;
  const bool unstructured = o.unstructuredPruning();
  const std::string pm = o.effectivePruneMethod();
  if (structured && !(o.pruneStructured > 0 && o.pruneStructured < 1)) {
    return err("--prune-structured must be a ratio between 0 and 1 "
               "(exclusive), got " + llvm::Twine(fmtNum(o.pruneStructured)));
  }
  if (o.prune != 0 && !(o.prune > 0 && o.prune < 1)) {
    return err("--prune must be a ratio between 0 and 1 (exclusive), got " +
               llvm::Twine(fmtNum(o.prune)));
  }
  if (structured && unstructured) {
    return err("--prune-structured and --prune/--prune-pattern exclude each "
               "other (they share --prune-method)");
  }
  if (!o.pruneMethod.empty() && !structured && !unstructured) {
    return err("--prune-method needs --prune-structured, --prune or "
               "--prune-pattern");
  }
  if (structured && pm != "flap" && pm != "wanda-sp" && pm != "l2") {
    return err("--prune-structured takes --prune-method flap, wanda-sp or l2, "
               "got '" + pm + "'");
  }
  if (unstructured && pm != "magnitude" && pm != "wanda") {
    return err("--prune takes --prune-method magnitude or wanda, got '" + pm +
               "'");
  }
  if (o.prunePattern != "unstructured") {
    llvm::StringRef p(o.prunePattern);
    auto [a, b] = p.split(':');
    int64_t n = 0, m = 0;
    if (a.getAsInteger(10, n) || b.getAsInteger(10, m) || n <= 0 || m <= n ||
        m > 64) {
      return err("--prune-pattern must be 'unstructured' or N:M with "
                 "0 < N < M <= 64, got '" + o.prunePattern + "'");
    }
    if (o.prune != 0 &&
        std::fabs(o.prune - (1.0 - double(n) / double(m))) > 1e-9) {
      return err("--prune-pattern " + o.prunePattern + " zeroes " +
                 llvm::Twine(m - n) + " of every " + llvm::Twine(m) +
                 " weights; --prune " + llvm::Twine(fmtNum(o.prune)) +
                 " disagrees (leave --prune out)");
    }
  }
  if (!o.lowrank.empty()) {
    llvm::StringRef s(o.lowrank);
    auto [key, val] = s.split('=');
    double v = 0;
    bool number = !val.getAsDouble(v) && std::isfinite(v);
    if ((key != "rank" && key != "energy" && key != "auto") || !number) {
      return err("--lowrank must be rank=R, energy=E or auto=FRACTION, got '" +
                 o.lowrank + "'");
    }
    if (key == "rank" && (v < 1 || v != std::floor(v))) {
      return err("--lowrank rank=R needs a positive integer rank, got '" + val +
                 "'");
    }
    if (key != "rank" && !(v > 0 && v < 1)) {
      return err("--lowrank " + key + "=X needs X between 0 and 1 "
                 "(exclusive), got '" + val + "'");
    }
  }
  if (o.needsCalibration() && !o.hasCalibration) {
    std::string who = (structured || unstructured) &&
                              (pm == "flap" || pm == "wanda-sp" || pm == "wanda")
                          ? "--prune-method " + pm
                      : llvm::StringRef(o.lowrank).starts_with("auto=")
                          ? "--lowrank auto"
                          : std::string("the pass");
    return err(who + " needs calibration text: --calib FILE");
  }
  if (o.hasCalibration && !o.needsCalibration() && o.lowrank.empty()) {
    return err("--calib is only used by --quant-method gptq|awq, --prune-method "
               "flap|wanda-sp|wanda and --lowrank");
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
  // Structure first (pruning, then factorization), then quantization of
  // what is left.
  if (o.pruneStructured > 0) {
    PruneStructuredPassOptions p;
    p.ratio = o.pruneStructured;
    p.method = o.effectivePruneMethod();
    p.progress = o.progress;
    pm.addPass(createPruneStructuredPass(p));
  }
  if (o.unstructuredPruning()) {
    PrunePassOptions p;
    p.ratio = o.prune > 0 ? o.prune : 0.5;
    p.method = o.effectivePruneMethod();
    p.pattern = o.prunePattern;
    // 2:4 matrices go to s24; --q8/--q4 then quantize them to s24q8/s24q4.
    p.sparseFormat = true;
    p.progress = o.progress;
    pm.addPass(createPrunePass(p));
  }
  if (!o.lowrank.empty()) {
    LowRankPassOptions l;
    l.spec = o.lowrank;
    l.progress = o.progress;
    pm.addPass(createLowRankPass(l));
  }
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
  // checkpoint's own matrices; it works on any format. The kernel fusions
  // are the CPU kernels' (the CUDA backend fuses at run time, by what the
  // program calls); SwiGLU reorders rows, so it comes before interleaving,
  // and the norm last, so that it folds into the SwiGLU linear too.
  if (o.fusionOn("projections")) {
    pm.addPass(createFuseProjectionsPass());
  }
  if (o.target == "cpu") {
    if (o.fusionOn("swiglu")) {
      pm.addPass(createFuseSwiGLUPass());
    }
    if (o.fusionOn("residual")) {
      pm.addPass(createFuseResidualPass());
    }
    if (o.fusionOn("rope")) {
      pm.addPass(createFuseRoPEPass());
    }
    if (o.fusionOn("norm")) {
      pm.addPass(createFuseNormPass());
    }
    if (o.fusionOn("lm-head")) {
      pm.addPass(createFuseLMHeadPass());
    }
  }
  // Last: the layout the CPU kernels read (after fusion, which concatenates
  // rows).
  if (o.interleave && o.target == "cpu") {
    pm.addPass(createInterleaveWeightsPass());
  }
  pm.addPass(mlir::createCanonicalizerPass());
}

const char *const kFusionNames[6] = {"projections", "swiglu", "residual",
                                     "rope", "norm", "lm-head"};

bool CompileOptions::fusionOn(const std::string &name) const {
  return fuse && llvm::find(disabledFusions, name) == disabledFusions.end();
}

void buildLoweringPipeline(mlir::OpPassManager &pm, const CompileOptions &o) {
  PlanMemoryPassOptions plan;
  plan.maxTokens = o.maxTokens;
  pm.addPass(createPlanMemoryPass(plan));
  LowerToLLVMPassOptions lower;
  lower.defaultWeights = o.defaultWeights;
  lower.target = o.target;
  lower.vectorWidth = o.vectorWidth;
  pm.addPass(createLowerToLLVMPass(lower));
  pm.addPass(mlir::createSCFToControlFlowPass());
  pm.addPass(mlir::createConvertVectorToLLVMPass());
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
  Option<bool> fuse{*this, "fuse",
                    llvm::cl::desc("Fuse projections and (target cpu) "
                                   "norm, SwiGLU, residual, RoPE and the "
                                   "LM head's norm"),
                    llvm::cl::init(true)};
  ListOption<std::string> disableFusion{
      *this, "disable-fusion",
      llvm::cl::desc("Fusions left out: projections, swiglu, residual, rope, "
                     "norm, lm-head")};
  Option<std::string> target{*this, "target", llvm::cl::desc("cpu or cuda"),
                             llvm::cl::init("cpu")};
  Option<bool> interleave{*this, "interleave",
                          llvm::cl::desc("Interleave q8/q4 rows by 8 for the "
                                         "CPU kernels"),
                          llvm::cl::init(true)};
  Option<double> pruneStructured{*this, "prune-structured",
                                 llvm::cl::desc("Structured pruning ratio"),
                                 llvm::cl::init(0)};
  Option<double> prune{*this, "prune",
                       llvm::cl::desc("Unstructured pruning ratio"),
                       llvm::cl::init(0)};
  Option<std::string> prunePattern{*this, "prune-pattern",
                                   llvm::cl::desc("unstructured or N:M"),
                                   llvm::cl::init("unstructured")};
  Option<std::string> pruneMethod{*this, "prune-method",
                                  llvm::cl::desc("Pruning scores"),
                                  llvm::cl::init("")};
  Option<std::string> lowrank{*this, "lowrank",
                              llvm::cl::desc("rank=R, energy=E or auto=F"),
                              llvm::cl::init("")};
};

struct LowerOptions : mlir::PassPipelineOptions<LowerOptions> {
  Option<int64_t> maxTokens{*this, "max-tokens",
                            llvm::cl::desc("Most tokens one forward call takes"),
                            llvm::cl::init(512)};
  Option<int64_t> vectorWidth{
      *this, "vector-width",
      llvm::cl::desc("f32 lanes of the generated elementwise loops"),
      llvm::cl::init(4)};
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
        o.disabledFusions.assign(c.disableFusion.begin(), c.disableFusion.end());
        o.target = c.target;
        o.interleave = c.interleave;
        o.pruneStructured = c.pruneStructured;
        o.prune = c.prune;
        o.prunePattern = c.prunePattern;
        o.pruneMethod = c.pruneMethod;
        o.lowrank = c.lowrank;
        o.progress = false;
        buildCompressionPipeline(pm, o);
      });
  mlir::PassPipelineRegistration<LowerOptions>(
      "llmc-lower", "llmc compile's lowering of an llm module to LLVM",
      [](mlir::OpPassManager &pm, const LowerOptions &l) {
        CompileOptions o;
        o.maxTokens = l.maxTokens;
        o.vectorWidth = l.vectorWidth;
        buildLoweringPipeline(pm, o);
      });
}

} // namespace llmc
