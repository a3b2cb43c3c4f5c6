// The block-by-block calibration driver shared by GPTQ and AWQ, on the runtime's evaluator.
#include "passes/Calibration.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <thread>

using namespace mlir;

namespace llmc {

namespace {

double nowSeconds() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

} // namespace

llm::GlobalOp globalOf(Value weight) {
  auto ref = weight ? weight.getDefiningOp<llm::WeightOp>() : nullptr;
  if (!ref) {
    return nullptr;
  }
  return SymbolTable::lookupNearestSymbolFrom<llm::GlobalOp>(
      ref, ref.getGlobalAttr());
}

Calibrator::~Calibrator() = default;

std::unique_ptr<Calibrator> Calibrator::create(ModuleOp module,
                                               llvm::StringRef passName) {
  auto fail = [&](const Twine &msg) -> std::unique_ptr<Calibrator> {
    module.emitError() << passName << ": " << msg;
    return nullptr;
  };
  auto calib = module->getAttrOfType<DenseIntElementsAttr>(kCalibrationAttrName);
  if (!calib) {
    return fail("needs calibration tokens (the llm.calibration module "
                "attribute; llmc compile sets it from --calib FILE)");
  }
  auto cfg = module->getAttrOfType<DictionaryAttr>(llm::kConfigAttrName);
  auto vocabAttr = cfg ? cfg.getAs<IntegerAttr>("vocab_size") : IntegerAttr();
  if (!vocabAttr) {
    return fail("the module has no llm.config with a vocab_size");
  }
  bool fused = false;
  module.walk([&](llm::LinearOp l) { fused |= l.isFused(); });
  if (fused) {
    return fail("a linear carries a fused norm, residual or SwiGLU, whose "
                "input or result is not its matrix's: run the llm-fuse-* "
                "passes after the calibration passes");
  }
  FailureOr<ProgramView> view = buildProgram(module, passName);
  if (failed(view)) {
    return nullptr;
  }
  std::unique_ptr<Calibrator> c(new Calibrator());
  c->passName_ = passName.str();
  c->view_ = std::move(*view);
  c->evaluator_ = std::make_unique<eval::Evaluator>(c->view_.program);
  std::string bad = c->evaluator_->validate(
      bindWeights(c->view_, c->storage_), vocabAttr.getInt());
  if (!bad.empty()) {
    return fail("cannot evaluate @forward: " + bad);
  }
  auto shape = cast<ShapedType>(calib.getType()).getShape();
  c->windows_ = shape[0];
  c->ctx_ = shape[1];
  for (const APInt &v : calib.getValues<APInt>()) {
    if (v.getSExtValue() < 0 || v.getSExtValue() >= vocabAttr.getInt()) {
      return fail("calibration token " + Twine(v.getSExtValue()) +
                  " is outside the vocabulary");
    }
    c->tokens_.push_back(static_cast<int32_t>(v.getSExtValue()));
  }

  // Cut points: boundaries before op i where exactly one activation is live.
  const eval::Evaluator &ev = *c->evaluator_;
  const auto &ops = c->view_.program.ops;
  const int32_t numValues = c->view_.program.numValues;
  std::vector<bool> cut(ops.size() + 1, false);
  for (size_t i = 1; i < ops.size(); ++i) {
    int live = 0;
    for (int32_t v = 0; v < numValues; ++v) {
      live += ev.definedBy(v) < i && ev.lastUse(v) >= i;
    }
    cut[i] = live == 1;
  }
  // Segments between cuts that hold a linear; a block starts at a segment
  // with an attention op (a decoder layer: its attention half and the MLP
  // after it), so each layer's linears are observed with the layer's own
  // float weights and every earlier layer compressed, as GPTQ and AWQ do.
  std::vector<Block> segments;
  Block cur;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (cut[i] && !cur.linears.empty()) {
      cur.end = i;
      segments.push_back(cur);
      cur = Block();
      cur.begin = i;
    }
    if (auto l = dyn_cast<llm::LinearOp>(c->view_.ops[i])) {
      cur.linears.push_back(l);
    }
  }
  if (!cur.linears.empty()) {
    cur.end = ops.size();
    segments.push_back(cur);
  }
  for (Block &seg : segments) {
    bool attention = false;
    for (size_t i = seg.begin; i < seg.end; ++i) {
      attention |= isa<llm::AttentionOp>(c->view_.ops[i]);
    }
    if (attention || c->blocks_.empty()) {
      c->blocks_.push_back(seg);
    } else {
      Block &last = c->blocks_.back();
      last.end = seg.end;
      llvm::append_range(last.linears, seg.linears);
    }
  }
  for (Block &blk : c->blocks_) {
    for (size_t i = blk.begin; i < blk.end; ++i) {
      auto l = dyn_cast<llm::LinearOp>(c->view_.ops[i]);
      if (l && llvm::none_of(blk.sites, [&](size_t j) {
            return cast<llm::LinearOp>(c->view_.ops[j]).getInput() ==
                   l.getInput();
          })) {
        blk.sites.insert(i);
      }
    }
  }

  // One cache layer large enough for any attention op (each block runs
  // whole windows from position 0, so layers can share it).
  int64_t cacheFloats = 1;
  for (const llmc_cache_layer &l : c->view_.program.cache) {
    cacheFloats = std::max(cacheFloats, l.kv_heads * l.head_dim);
  }
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  c->pool_ = std::make_unique<ThreadPool>(threads > 0 ? threads : 1);
  c->exec_ = std::make_unique<llmc_exec>();
  c->exec_->init(c->pool_.get(), &kernels::bestKernels(), {{1, cacheFloats}},
                 c->ctx_);
  c->states_.resize(static_cast<size_t>(c->windows_));
  c->startTime_ = nowSeconds();
  return c;
}

void Calibrator::run(int64_t b, eval::Evaluator::Mode mode,
                     const LinearHook *hook) {
  // The passes rewrite globals between blocks: bind their data anew.
  storage_.clear();
  std::vector<eval::Weight> weights = bindWeights(view_, storage_);
  const Block &blk = blocks_[b];
  // Blocks tile [0, last block's end), so advancing every block runs each
  // op up to the last linear once.
  eval::Hook evalHook = [&](size_t op, int operand, const float *x, int64_t n,
                            int64_t width) {
    if (operand == 0 && blk.sites.contains(op)) {
      (*hook)(cast<llm::LinearOp>(view_.ops[op]).getInput(), x, n, width);
    }
  };
  for (int64_t w = 0; w < windows_; ++w) {
    evaluator_->run(exec_.get(), weights, states_[w],
                    tokens_.data() + w * ctx_, ctx_, 0, blk.begin, blk.end,
                    mode, hook ? &evalHook : nullptr, 0, nullptr,
                    /*cacheSlot=*/0);
  }
}

void Calibrator::observe(int64_t b, const LinearHook &hook) {
  run(b, eval::Evaluator::Mode::Observe, &hook);
}

void Calibrator::advance(int64_t b) {
  run(b, eval::Evaluator::Mode::Commit, nullptr);
}

void Calibrator::progress(int64_t done) const {
  double elapsed = nowSeconds() - startTime_;
  double left = done > 0 ? elapsed / done * (numBlocks() - done) : 0.0;
  llvm::errs() << passName_ << ": block " << done << "/" << numBlocks() << ", "
               << llvm::format("%.1f", elapsed) << " s elapsed, about "
               << llvm::format("%.0f", left) << " s left\n";
}

} // namespace llmc
