// Module → artifact contents: config, tensor table and raw weight bytes.
#include "compiler/ArtifactBuilder.h"

#include "dialects/llm/LLMDialect.h"
#include "passes/Program.h"
#include "passes/WeightData.h"
#include "passes/WeightStore.h"
#include "runtime/artifact/fingerprint.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/Support/MemoryBuffer.h"
#include <openssl/evp.h>

namespace llmc {

using namespace mlir;

namespace {

std::vector<artifact::TensorSignature> signatures(ModuleOp module) {
  std::vector<artifact::TensorSignature> sigs;
  for (llm::GlobalOp g : module.getOps<llm::GlobalOp>()) {
    llm::WeightType t = g.getWeightType();
    sigs.push_back({g.getSymName().str(), static_cast<int32_t>(t.getKind()),
                    static_cast<int32_t>(t.getGroupSize()), t.getAsymmetric(),
                    std::vector<int64_t>(t.getShape().begin(),
                                         t.getShape().end())});
  }
  return sigs;
}

} // namespace

uint64_t tensorFingerprint(ModuleOp module) {
  return artifact::tensorTableFingerprint(signatures(module));
}

llvm::Expected<artifact::Contents> collectArtifact(ModuleOp module) {
  auto fail = [](const llvm::Twine &m) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), m);
  };
  auto cfg = module->getAttrOfType<DictionaryAttr>(llm::kConfigAttrName);
  if (!cfg) {
    return fail("the module has no llm.config");
  }
  artifact::Contents c;
  auto geti = [&](StringRef k) {
    auto a = cfg.getAs<IntegerAttr>(k);
    return a ? a.getInt() : 0;
  };
  auto getf = [&](StringRef k) {
    auto a = cfg.getAs<FloatAttr>(k);
    return a ? a.getValueAsDouble() : 0.0;
  };
  c.config.hidden_size = geti("hidden_size");
  c.config.intermediate_size = geti("intermediate_size");
  c.config.num_layers = geti("num_layers");
  c.config.num_heads = geti("num_heads");
  c.config.num_kv_heads = geti("num_kv_heads");
  c.config.head_dim = geti("head_dim");
  c.config.vocab_size = geti("vocab_size");
  c.config.max_seq_len = geti("max_seq_len");
  c.config.rms_norm_eps = getf("rms_norm_eps");
  c.config.rope_theta = getf("rope_theta");
  if (auto tied = cfg.getAs<BoolAttr>("tie_word_embeddings")) {
    c.config.tie_word_embeddings = tied.getValue();
  }
  c.config.bos_token_id = static_cast<int32_t>(geti("bos_token_id"));
  if (auto eos = cfg.getAs<ArrayAttr>("eos_token_ids")) {
    for (Attribute a : eos) {
      c.config.eos_token_ids.push_back(
          static_cast<int32_t>(cast<IntegerAttr>(a).getInt()));
    }
  }

  for (llm::GlobalOp g : module.getOps<llm::GlobalOp>()) {
    llm::WeightType t = g.getWeightType();
    artifact::WriterTensor w;
    w.name = g.getSymName().str();
    w.format = static_cast<fb::StorageFormat>(t.getKind());
    w.groupSize = static_cast<int32_t>(t.getGroupSize());
    w.asymmetric = t.getAsymmetric();
    w.shape.assign(t.getShape().begin(), t.getShape().end());
    if (!hasWeightValues(g)) {
      // Shapes only: the artifact can only be a synthetic one.
      c.syntheticWeights = true;
      w.size = static_cast<size_t>(t.getStorageBytes());
      c.tensors.push_back(std::move(w));
      continue;
    }
    ArrayRef<char> bytes;
    if (auto r = dyn_cast_if_present<DenseResourceElementsAttr>(g.getDataAttr())) {
      if (AsmResourceBlob *blob = r.getRawHandle().getBlob()) {
        bytes = blob->getData();
      }
    } else if (auto d = dyn_cast_if_present<DenseElementsAttr>(g.getDataAttr())) {
      if (d.isSplat()) {
        // Expand a splat into the full tensor, kept alive by the module's
        // context as a new blob.
        ArrayRef<char> one = d.getRawData();
        int64_t n = t.getStorageBytes() / static_cast<int64_t>(one.size());
        AsmResourceBlob blob =
            allocateWeightBlob(static_cast<size_t>(t.getStorageBytes()));
        for (int64_t i = 0; i < n; ++i) {
          std::memcpy(blob.getMutableData().data() + i * one.size(),
                      one.data(), one.size());
        }
        auto attr = DenseResourceElementsAttr::get(
            cast<ShapedType>(d.getType()), (g.getSymName() + ".splat").str(),
            std::move(blob));
        g.setDataAttr(attr);
        bytes = attr.getRawHandle().getBlob()->getData();
      } else {
        bytes = d.getRawData();
      }
    }
    if (static_cast<int64_t>(bytes.size()) != t.getStorageBytes()) {
      return fail("@" + g.getSymName() + ": cannot read its " +
                  llvm::Twine(t.getStorageBytes()) + " bytes of data");
    }
    w.data = bytes.data();
    w.size = bytes.size();
    c.tensors.push_back(std::move(w));
  }
  c.programFingerprint = tensorFingerprint(module);
  // The program as data, for the evaluator (llmc-run, --kl-reference).
  FailureOr<ProgramView> view = buildProgram(module, "artifact");
  if (failed(view)) {
    return fail("cannot describe @forward for the artifact");
  }
  // What the runtime will check at load, checked here first, so an
  // inconsistent module (a hand-written .mlir whose llm.config vocabulary
  // is not its embedding's or LM head's) fails at compile time.
  std::deque<std::vector<float>> storage;
  std::string bad = eval::Evaluator(view->program)
                        .validate(bindWeights(*view, storage), c.config.vocab_size);
  if (!bad.empty()) {
    return fail("the module's program is inconsistent: " + bad);
  }
  c.program = std::move(view->program);
  return c;
}

std::string sha256File(const std::string &path,
                       const std::atomic<bool> *cancel) {
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                         /*RequiresNullTerminator=*/false);
  if (!buf) {
    return "";
  }
  llvm::StringRef data = (*buf)->getBuffer();
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX *)> ctx(EVP_MD_CTX_new(),
                                                          EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return "";
  }
  // In pieces, so a mapped file's pages are read (and may be dropped) in
  // order rather than faulted in whole.
  constexpr size_t kPiece = size_t{64} << 20;
  for (size_t at = 0; at < data.size(); at += kPiece) {
    if (cancel && cancel->load(std::memory_order_relaxed)) {
      return "";
    }
    size_t n = std::min(kPiece, data.size() - at);
    if (EVP_DigestUpdate(ctx.get(), data.data() + at, n) != 1) {
      return "";
    }
  }
  if (EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1 || len != 32) {
    return "";
  }
  static const char *hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 15]);
  }
  return out;
}

} // namespace llmc
