// Builds the `llm` module of a LLaMA checkpoint, one decoder layer at a time.
#include "compiler/Importer.h"

#include "dialects/llm/LLMDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/BuiltinDialect.h"
#include "mlir/IR/Verifier.h"

#include <algorithm>
#include <cstring>

using namespace mlir;

namespace llmc {

namespace {

class ModuleBuilder {
public:
  ModuleBuilder(MLIRContext &ctx, const Checkpoint &ckpt, ModuleOp module)
      : ctx_(ctx), ckpt_(ckpt), module_(module), b_(&ctx) {}

  /// Declares the global for `name` (once) and returns a reference to it,
  /// inserted at the builder's current point.
  llvm::Expected<Value> weight(llvm::StringRef name,
                               llvm::ArrayRef<int64_t> shape) {
    auto it = globals_.find(name);
    if (it == globals_.end()) {
      auto t = ckpt_.require(name, shape);
      if (!t) {
        return t.takeError();
      }
      if (llvm::Error e = checkFinite(**t)) {
        return std::move(e);
      }
      llm::GlobalOp g = declareGlobal(**t);
      it = globals_.try_emplace(name, g).first;
    }
    llm::GlobalOp g = it->second;
    return llm::WeightOp::create(b_, loc(name), g.getWeightType(),
                                 FlatSymbolRefAttr::get(g.getSymNameAttr()))
        .getResult();
  }

  OpBuilder &builder() { return b_; }
  /// True when the module reads the checkpoint tensor `name`.
  bool uses(llvm::StringRef name) const { return globals_.count(name) != 0; }
  Location loc(llvm::StringRef name) {
    return NameLoc::get(StringAttr::get(&ctx_, name));
  }

private:
  /// A NaN or an infinity in a weight is a damaged checkpoint: every token
  /// through it would be NaN. Reads each element's exponent bits once.
  static llvm::Error checkFinite(const TensorView &t) {
    if (t.shapesOnly) {
      return llvm::Error::success();
    }
    const char *p = t.data.data();
    const int64_t n = t.numElements();
    int64_t bad = -1;
    auto scan = [&](auto word, uint64_t wideMask) {
      using W = decltype(word);
      const W mask = static_cast<W>(wideMask);
      auto nonFinite = [&](int64_t i) {
        W v;
        std::memcpy(&v, p + i * sizeof(W), sizeof(W));
        return (v & mask) == mask;
      };
      // A branch-free pass per chunk (vectorized: 13 GB of a 7B checkpoint
      // go through here), then the element, only in a chunk that has one.
      constexpr int64_t kChunk = 4096;
      for (int64_t c = 0; c < n; c += kChunk) {
        const int64_t e = std::min(n, c + kChunk);
        unsigned any = 0;
        for (int64_t i = c; i < e; ++i) {
          any |= static_cast<unsigned>(nonFinite(i));
        }
        for (int64_t i = c; any && i < e; ++i) {
          if (nonFinite(i)) {
            bad = i;
            return;
          }
        }
      }
    };
    switch (t.dtype) {
    case DType::F32:
      scan(uint32_t(0), 0x7F800000u);
      break;
    case DType::F16:
      scan(uint16_t(0), 0x7C00u);
      break;
    case DType::BF16:
      scan(uint16_t(0), 0x7F80u);
      break;
    default:
      return llvm::Error::success();
    }
    if (bad < 0) {
      return llvm::Error::success();
    }
    return llvm::createStringError(
        t.path + ": tensor '" + t.name + "' holds an infinity or a NaN (element " +
        std::to_string(bad) + "): the checkpoint is damaged");
  }

  llm::GlobalOp declareGlobal(const TensorView &t) {
    llm::StorageKind kind;
    Type elem;
    switch (t.dtype) {
    case DType::F16:
      kind = llm::StorageKind::f16;
      elem = b_.getF16Type();
      break;
    case DType::BF16:
      kind = llm::StorageKind::bf16;
      elem = b_.getBF16Type();
      break;
    default:
      kind = llm::StorageKind::f32;
      elem = b_.getF32Type();
      break;
    }
    auto wt = llm::WeightType::get(&ctx_, t.shape, kind);
    OpBuilder::InsertionGuard guard(b_);
    b_.setInsertionPoint(module_.getBody(), std::prev(module_.getBody()->end()));
    if (t.shapesOnly) {
      return llm::GlobalOp::create(b_, loc(t.name), b_.getStringAttr(t.name),
                                   TypeAttr::get(wt), ElementsAttr());
    }
    auto dataType = RankedTensorType::get(t.shape, elem);

    // The blob aliases the mapping; its deleter holds the mapping alive.
    // Tensors whose offset breaks element alignment are copied instead.
    size_t align = dtypeSize(t.dtype);
    AsmResourceBlob blob;
    if (reinterpret_cast<uintptr_t>(t.data.data()) % align == 0) {
      std::shared_ptr<llvm::MemoryBuffer> keep = t.file;
      blob = AsmResourceBlob(
          t.data, align,
          [keep](void *, size_t, size_t) mutable { keep.reset(); },
          /*dataIsMutable=*/false);
    } else {
      blob = HeapAsmResourceBlob::allocateAndCopyWithAlign(t.data, align);
    }
    auto data = DenseResourceElementsAttr::get(dataType, t.name, std::move(blob));
    return llm::GlobalOp::create(b_, loc(t.name), b_.getStringAttr(t.name),
                                 TypeAttr::get(wt),
                                 data);
  }

  MLIRContext &ctx_;
  const Checkpoint &ckpt_;
  ModuleOp module_;
  OpBuilder b_;
  llvm::StringMap<llm::GlobalOp> globals_;
};

DictionaryAttr configAttr(Builder &b, const ModelConfig &c, int64_t maxSeq) {
  SmallVector<NamedAttribute> attrs = {
      b.getNamedAttr("hidden_size", b.getI64IntegerAttr(c.hiddenSize)),
      b.getNamedAttr("intermediate_size",
                     b.getI64IntegerAttr(c.intermediateSize)),
      b.getNamedAttr("num_layers", b.getI64IntegerAttr(c.numLayers)),
      b.getNamedAttr("num_heads", b.getI64IntegerAttr(c.numHeads)),
      b.getNamedAttr("num_kv_heads", b.getI64IntegerAttr(c.numKVHeads)),
      b.getNamedAttr("head_dim", b.getI64IntegerAttr(c.headDim)),
      b.getNamedAttr("vocab_size", b.getI64IntegerAttr(c.vocabSize)),
      b.getNamedAttr("max_seq_len", b.getI64IntegerAttr(maxSeq)),
      b.getNamedAttr("rms_norm_eps", b.getF64FloatAttr(c.rmsNormEps)),
      b.getNamedAttr("rope_theta", b.getF64FloatAttr(c.ropeTheta)),
      b.getNamedAttr("tie_word_embeddings",
                     b.getBoolAttr(c.tieWordEmbeddings)),
      b.getNamedAttr("bos_token_id", b.getI64IntegerAttr(c.bosTokenId)),
      b.getNamedAttr("eos_token_ids", b.getI64ArrayAttr(c.eosTokenIds)),
  };
  return b.getDictionaryAttr(attrs);
}

/// One decoder layer's head counts and FFN width, from its own tensors:
/// checkpoints pruned by other tools keep Hugging Face names but give each
/// layer its own shapes, which config.json cannot express.
struct LayerShapes {
  int64_t heads, kvHeads, ffn;
};

llvm::Expected<LayerShapes> layerShapes(const Checkpoint &ckpt,
                                        const std::string &prefix) {
  const ModelConfig &c = ckpt.config();
  const int64_t D = c.hiddenSize, hd = c.headDim;
  auto rows = [&](const std::string &name) -> llvm::Expected<const TensorView *> {
    return ckpt.requireRank(prefix + name, 2);
  };
  auto q = rows("self_attn.q_proj.weight");
  if (!q) return q.takeError();
  auto k = rows("self_attn.k_proj.weight");
  if (!k) return k.takeError();
  auto g = rows("mlp.gate_proj.weight");
  if (!g) return g.takeError();
  auto bad = [&](const TensorView *t, const llvm::Twine &why) {
    return fileError(t->path, "tensor '" + t->name + "' " + why);
  };
  for (const TensorView *t : {*q, *k, *g}) {
    if (t->shape[1] != D) {
      return bad(t, "has " + llvm::Twine(t->shape[1]) +
                        " columns, not hidden_size (" + llvm::Twine(D) + ")");
    }
  }
  for (const TensorView *t : {*q, *k}) {
    if (t->shape[0] <= 0 || t->shape[0] % hd != 0) {
      return bad(t, "has " + llvm::Twine(t->shape[0]) +
                        " rows, not a positive multiple of head_dim (" +
                        llvm::Twine(hd) + ")");
    }
  }
  LayerShapes s{(*q)->shape[0] / hd, (*k)->shape[0] / hd, (*g)->shape[0]};
  if (s.heads % s.kvHeads != 0) {
    return bad(*k, "gives " + llvm::Twine(s.kvHeads) +
                       " key/value heads, which do not divide the " +
                       llvm::Twine(s.heads) + " query heads of q_proj");
  }
  if (s.ffn <= 0) {
    return bad(*g, "has no rows");
  }
  return s;
}

} // namespace

llvm::Expected<OwningOpRef<ModuleOp>>
importCheckpoint(MLIRContext &ctx, const Checkpoint &ckpt, int64_t maxSeqLen) {
  ctx.loadDialect<llm::LLMDialect, func::FuncDialect>();
  const ModelConfig &c = ckpt.config();
  const int64_t maxSeq = maxSeqLen > 0 ? maxSeqLen : c.maxPositionEmbeddings;
  const int64_t D = c.hiddenSize, V = c.vocabSize;

  Location fileLoc = FileLineColLoc::get(&ctx, ckpt.directory(), 0, 0);
  OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
  ModuleBuilder mb(ctx, ckpt, *module);
  OpBuilder &b = mb.builder();
  (*module)->setAttr(llm::kConfigAttrName, configAttr(b, c, maxSeq));

  auto f32 = b.getF32Type();
  auto act = [&](int64_t width) {
    return RankedTensorType::get({ShapedType::kDynamic, width}, f32);
  };
  auto tokensType = RankedTensorType::get({ShapedType::kDynamic}, b.getI32Type());
  auto cacheType = llm::KVCacheType::get(&ctx, c.numLayers, maxSeq);
  auto funcType = b.getFunctionType({tokensType, b.getIndexType(), cacheType},
                                    {act(V)});
  b.setInsertionPointToEnd(module->getBody());
  auto func = func::FuncOp::create(b, fileLoc, kForwardFuncName, funcType);
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);
  Value tokens = entry->getArgument(0), start = entry->getArgument(1),
        cache = entry->getArgument(2);
  FloatAttr eps = b.getF32FloatAttr(static_cast<float>(c.rmsNormEps));

  auto emb = mb.weight("model.embed_tokens.weight", {V, D});
  if (!emb) {
    return emb.takeError();
  }
  Value x = llm::EmbeddingOp::create(b, mb.loc("model.embed_tokens"), act(D),
                                     tokens, *emb);

  for (int64_t l = 0; l < c.numLayers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    auto shapes = layerShapes(ckpt, p);
    if (!shapes) {
      return shapes.takeError();
    }
    const int64_t heads = shapes->heads, kvHeads = shapes->kvHeads,
                  F = shapes->ffn, qDim = heads * c.headDim,
                  kvDim = kvHeads * c.headDim;
    auto w = [&](const std::string &n, llvm::ArrayRef<int64_t> shape) {
      return mb.weight(p + n, shape);
    };
    auto linear = [&](Value in, const std::string &n, int64_t out,
                      int64_t inDim, bool bias) -> llvm::Expected<Value> {
      auto wt = w(n + ".weight", {out, inDim});
      if (!wt) {
        return wt.takeError();
      }
      Value bv;
      if (bias) {
        auto bt = w(n + ".bias", {out});
        if (!bt) {
          return bt.takeError();
        }
        bv = *bt;
      }
      return llm::LinearOp::create(b, mb.loc(p + n), TypeRange{act(out)}, in,
                                   *wt, bv)
          .getResult();
    };

    auto inNorm = w("input_layernorm.weight", {D});
    if (!inNorm) {
      return inNorm.takeError();
    }
    Value h = llm::RMSNormOp::create(b, mb.loc(p + "input_layernorm"), act(D), x,
                                     *inNorm, eps);
    auto q = linear(h, "self_attn.q_proj", qDim, D, c.attentionBias);
    if (!q) return q.takeError();
    auto k = linear(h, "self_attn.k_proj", kvDim, D, c.attentionBias);
    if (!k) return k.takeError();
    auto v = linear(h, "self_attn.v_proj", kvDim, D, c.attentionBias);
    if (!v) return v.takeError();
    FloatAttr theta = b.getF32FloatAttr(static_cast<float>(c.ropeTheta));
    Value qr = llm::RoPEOp::create(b, mb.loc(p + "self_attn.rope_q"), act(qDim), *q,
                                   start, heads, c.headDim, theta.getValue());
    Value kr = llm::RoPEOp::create(b, mb.loc(p + "self_attn.rope_k"), act(kvDim), *k,
                                   start, kvHeads, c.headDim, theta.getValue());
    Value attn = llm::AttentionOp::create(
        b, mb.loc(p + "self_attn"), act(qDim), qr, kr, *v, cache, start, l,
        heads, kvHeads, c.headDim, /*rope_theta=*/nullptr);
    auto o = linear(attn, "self_attn.o_proj", D, qDim, c.attentionBias);
    if (!o) return o.takeError();
    x = llm::AddOp::create(b, mb.loc(p + "residual_attn"), x, *o);

    auto postNorm = w("post_attention_layernorm.weight", {D});
    if (!postNorm) {
      return postNorm.takeError();
    }
    h = llm::RMSNormOp::create(b, mb.loc(p + "post_attention_layernorm"), act(D), x,
                               *postNorm, eps);
    auto g = linear(h, "mlp.gate_proj", F, D, c.mlpBias);
    if (!g) return g.takeError();
    auto u = linear(h, "mlp.up_proj", F, D, c.mlpBias);
    if (!u) return u.takeError();
    Value s = llm::SiLUOp::create(b, mb.loc(p + "mlp.act"), *g);
    Value m = llm::MulOp::create(b, mb.loc(p + "mlp.gate"), s, *u);
    auto d = linear(m, "mlp.down_proj", D, F, c.mlpBias);
    if (!d) return d.takeError();
    x = llm::AddOp::create(b, mb.loc(p + "residual_mlp"), x, *d);
  }

  auto finalNorm = mb.weight("model.norm.weight", {D});
  if (!finalNorm) {
    return finalNorm.takeError();
  }
  x = llm::RMSNormOp::create(b, mb.loc("model.norm"), act(D), x, *finalNorm, eps);
  Value headW;
  bool tied = c.tieWordEmbeddings;
  if (tied) {
    headW = *emb;
  } else {
    auto hw = mb.weight("lm_head.weight", {V, D});
    if (!hw) {
      return hw.takeError();
    }
    headW = *hw;
  }
  Value logits = llm::LMHeadOp::create(b, mb.loc("lm_head"), act(V), x, headW,
                                       /*norm=*/Value(), /*norm_eps=*/FloatAttr(),
                                       tied ? b.getUnitAttr() : UnitAttr());
  func::ReturnOp::create(b, fileLoc, logits);

  // Nothing is dropped silently: a tensor the model does not read (a layer
  // past num_hidden_layers, a bias the config does not announce, another
  // architecture's weight) is an error naming it. Rotary inv_freq buffers
  // (older exports) are recomputed from rope_theta and may be present.
  const TensorView *embedding = ckpt.lookup("model.embed_tokens.weight");
  for (const TensorView *tp : ckpt.tensors()) {
    const TensorView &t = *tp;
    // Some exports store a tied head anyway: a byte-identical copy of the
    // embedding table is what tying means; anything else is an error.
    bool tiedCopy = tied && t.name == "lm_head.weight" && embedding &&
                    t.dtype == embedding->dtype &&
                    t.shape == embedding->shape &&
                    t.data.size() == embedding->data.size() &&
                    std::memcmp(t.data.data(), embedding->data.data(),
                                t.data.size()) == 0;
    if (!mb.uses(t.name) && !tiedCopy &&
        !llvm::StringRef(t.name).ends_with(".rotary_emb.inv_freq")) {
      return fileError(t.path,
                       "tensor '" + t.name + "' is not used by the model " +
                           (llvm::StringRef(ckpt.format()) == "gguf"
                                ? "the GGUF metadata"
                                : "config.json") +
                           " describes (num_hidden_layers " +
                           llvm::Twine(c.numLayers) + ", attention_bias " +
                           (c.attentionBias ? "true" : "false") +
                           ", mlp_bias " + (c.mlpBias ? "true" : "false") +
                           ", tie_word_embeddings " +
                           (c.tieWordEmbeddings ? "true" : "false") + ")");
    }
  }
  if (failed(verify(*module))) {
    return fileError(ckpt.directory(), "imported module failed to verify");
  }
  return module;
}

} // namespace llmc
