// The layer-by-layer calibration driver shared by GPTQ and AWQ.
#include "passes/Calibration.h"

#include "passes/WeightData.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/DialectResourceBlobManager.h"
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

std::vector<llm::GlobalOp> LayerGlobals::at(LinearSite site) const {
  switch (site) {
  case LinearSite::QKV:
    return {q, k, v};
  case LinearSite::O:
    return {o};
  case LinearSite::GateUp:
    return {gate, up};
  case LinearSite::Down:
    return {down};
  }
  return {};
}

LayerwiseCalibrator::~LayerwiseCalibrator() = default;

RefWeight LayerwiseCalibrator::refOf(llm::GlobalOp g) {
  llm::WeightType t = g.getWeightType();
  RefWeight w;
  w.format = static_cast<int32_t>(t.getKind());
  w.group = static_cast<int32_t>(t.getGroupSize());
  w.asym = t.getAsymmetric() ? 1 : 0;
  auto dense = dyn_cast<DenseElementsAttr>(g.getData());
  if (auto r = dyn_cast<DenseResourceElementsAttr>(g.getData())) {
    w.data = r.getRawHandle().getBlob()->getData().data();
  } else if (dense && !dense.isSplat()) {
    w.data = dense.getRawData().data();
  } else {
    // Splats (tests) are expanded to f32 copies that live with the calibrator.
    floatCopies_.push_back(readFloatWeight(g).value_or(std::vector<float>()));
    w.data = floatCopies_.back().data();
    w.format = LLMC_FORMAT_F32;
  }
  return w;
}

std::unique_ptr<LayerwiseCalibrator>
LayerwiseCalibrator::create(ModuleOp module, llvm::StringRef passName) {
  auto fail = [&](const Twine &msg) -> std::unique_ptr<LayerwiseCalibrator> {
    module.emitError() << passName << ": " << msg;
    return nullptr;
  };
  auto cfg = module->getAttrOfType<DictionaryAttr>(llm::kConfigAttrName);
  if (!cfg) {
    return fail("the module has no llm.config");
  }
  auto calib = module->getAttrOfType<DenseIntElementsAttr>(kCalibrationAttrName);
  if (!calib) {
    return fail("needs calibration tokens (the llm.calibration module "
                "attribute; llmc compile sets it from --calib FILE)");
  }
  std::unique_ptr<LayerwiseCalibrator> c(new LayerwiseCalibrator());
  c->module_ = module;
  c->passName_ = passName.str();
  auto shape = cast<ShapedType>(calib.getType()).getShape();
  c->windows_ = shape[0];
  c->ctx_ = shape[1];
  auto geti = [&](StringRef k) {
    auto a = cfg.getAs<IntegerAttr>(k);
    return a ? a.getInt() : 0;
  };
  RefModel &m = c->model_;
  m.hidden = geti("hidden_size");
  m.ffn = geti("intermediate_size");
  m.heads = geti("num_heads");
  m.kvHeads = geti("num_kv_heads");
  m.headDim = geti("head_dim");
  m.vocab = geti("vocab_size");
  m.eps = static_cast<float>(cfg.getAs<FloatAttr>("rms_norm_eps").getValueAsDouble());
  m.theta = static_cast<float>(cfg.getAs<FloatAttr>("rope_theta").getValueAsDouble());
  const int64_t numLayers = geti("num_layers");

  llvm::StringMap<llm::GlobalOp> byName;
  for (llm::GlobalOp g : module.getOps<llm::GlobalOp>()) {
    byName[g.getSymName()] = g;
  }
  std::string missing;
  auto get = [&](const std::string &name) {
    llm::GlobalOp g = byName.lookup(name);
    if (!g && missing.empty()) {
      missing = name;
    }
    return g;
  };
  llm::GlobalOp embed = get("model.embed_tokens.weight");
  for (int64_t l = 0; l < numLayers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    LayerGlobals L;
    L.inputNorm = get(p + "input_layernorm.weight");
    L.q = get(p + "self_attn.q_proj.weight");
    L.k = get(p + "self_attn.k_proj.weight");
    L.v = get(p + "self_attn.v_proj.weight");
    L.o = get(p + "self_attn.o_proj.weight");
    L.postNorm = get(p + "post_attention_layernorm.weight");
    L.gate = get(p + "mlp.gate_proj.weight");
    L.up = get(p + "mlp.up_proj.weight");
    L.down = get(p + "mlp.down_proj.weight");
    c->layers_.push_back(L);
  }
  if (!missing.empty()) {
    return fail("no global named @" + missing +
                " (calibration follows Hugging Face LLaMA names)");
  }
  for (const APInt &v : calib.getValues<APInt>()) {
    if (v.getSExtValue() < 0 || v.getSExtValue() >= m.vocab) {
      return fail("calibration token " + Twine(v.getSExtValue()) +
                  " is outside the vocabulary");
    }
  }
  m.layers.resize(static_cast<size_t>(numLayers));
  m.embed = c->refOf(embed);

  int threads = static_cast<int>(std::thread::hardware_concurrency());
  c->pool_ = std::make_unique<ThreadPool>(threads > 0 ? threads : 1);
  c->exec_ = std::make_unique<llmc_exec>();
  c->exec_->init(c->pool_.get(), &kernels::bestKernels(), 1, m.kvHeads,
                 m.headDim, c->ctx_);

  std::vector<int32_t> tokens;
  for (const APInt &v : calib.getValues<APInt>()) {
    tokens.push_back(static_cast<int32_t>(v.getSExtValue()));
  }
  c->hidden_.resize(static_cast<size_t>(c->windows_ * c->ctx_ * m.hidden));
  for (int64_t w = 0; w < c->windows_; ++w) {
    referenceEmbed(m, c->exec_.get(), tokens.data() + w * c->ctx_, c->ctx_,
                   c->hidden_.data() + w * c->ctx_ * m.hidden);
  }
  c->startTime_ = nowSeconds();
  return c;
}

void LayerwiseCalibrator::bind(int64_t l) {
  const LayerGlobals &g = layers_[l];
  RefLayer &L = model_.layers[l];
  L.inputNorm = refOf(g.inputNorm);
  L.q = refOf(g.q);
  L.k = refOf(g.k);
  L.v = refOf(g.v);
  L.o = refOf(g.o);
  L.postNorm = refOf(g.postNorm);
  L.gate = refOf(g.gate);
  L.up = refOf(g.up);
  L.down = refOf(g.down);
}

void LayerwiseCalibrator::observe(int64_t l, const SiteHook &hook) {
  bind(l);
  std::vector<float> x(static_cast<size_t>(ctx_ * model_.hidden));
  for (int64_t w = 0; w < windows_; ++w) {
    std::copy_n(hidden_.data() + w * ctx_ * model_.hidden, x.size(), x.data());
    referenceLayer(model_, exec_.get(), l, 0, x.data(), ctx_, 0, &hook);
  }
}

void LayerwiseCalibrator::advance(int64_t l) {
  bind(l);
  for (int64_t w = 0; w < windows_; ++w) {
    referenceLayer(model_, exec_.get(), l, 0,
                   hidden_.data() + w * ctx_ * model_.hidden, ctx_, 0);
  }
}

void LayerwiseCalibrator::progress(int64_t done) const {
  double elapsed = nowSeconds() - startTime_;
  double left = done > 0 ? elapsed / done * (numLayers() - done) : 0.0;
  llvm::errs() << passName_ << ": layer " << done << "/" << numLayers() << ", "
               << llvm::format("%.1f", elapsed) << " s elapsed, about "
               << llvm::format("%.0f", left) << " s left\n";
}

} // namespace llmc
