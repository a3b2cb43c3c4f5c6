// @forward → the evaluator's op list: value ids for activations, tensor indices for globals.
#include "passes/Program.h"

#include "passes/WeightData.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace llmc {

namespace {

int64_t widthOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getDimSize(1);
}

} // namespace

FailureOr<ProgramView> buildProgram(ModuleOp module, StringRef who) {
  ProgramView view;
  auto forward = module.lookupSymbol<func::FuncOp>(kForwardFuncName);
  if (!forward || forward.getBody().empty()) {
    module.emitError() << who << ": no @" << kForwardFuncName << " function";
    return failure();
  }
  Block &body = forward.getBody().front();
  if (body.getNumArguments() != 3) {
    forward.emitError() << who << ": @forward must take (tokens, start, cache)";
    return failure();
  }
  Value tokensArg = body.getArgument(0), startArg = body.getArgument(1),
        cacheArg = body.getArgument(2);
  for (llm::GlobalOp g : module.getOps<llm::GlobalOp>()) {
    view.globalIndex[g] = static_cast<int32_t>(view.globals.size());
    view.globals.push_back(g);
  }
  eval::Program &p = view.program;
  int32_t next = 0;
  llvm::DenseMap<Value, int32_t> weightRefs; // llm.weight result -> tensor
  auto fail = [&](Operation *op, const Twine &msg) {
    op->emitError() << who << ": " << msg;
    return failure();
  };
  auto tensor = [&](Value w) -> int32_t {
    auto it = weightRefs.find(w);
    return it == weightRefs.end() ? -1 : it->second;
  };
  auto value = [&](Value v) -> int32_t {
    auto it = view.valueIds.find(v);
    return it == view.valueIds.end() ? -1 : it->second;
  };
  for (Operation &o : body) {
    if (auto w = dyn_cast<llm::WeightOp>(o)) {
      auto g = module.lookupSymbol<llm::GlobalOp>(w.getGlobalAttr());
      if (!g) {
        return fail(&o, "unknown global @" + w.getGlobal());
      }
      weightRefs[w.getResult()] = view.globalIndex[g];
      continue;
    }
    if (auto ret = dyn_cast<func::ReturnOp>(o)) {
      if (ret.getNumOperands() != 1 || value(ret.getOperand(0)) < 0) {
        return fail(&o, "@forward must return the logits");
      }
      p.output = value(ret.getOperand(0));
      continue;
    }
    eval::Op op;
    for (Value r : o.getResults()) {
      view.valueIds[r] = next;
      op.results.push_back(next++);
      op.widths.push_back(widthOf(r));
    }
    auto inputs = [&](std::initializer_list<Value> vs) -> LogicalResult {
      for (Value v : vs) {
        int32_t id = value(v);
        if (id < 0) {
          return fail(&o, "reads a value that no llm op of @forward defines");
        }
        op.inputs.push_back(id);
      }
      return success();
    };
    auto position = [&](Value start) -> LogicalResult {
      if (start != startArg) {
        return fail(&o, "its position must be @forward's start argument");
      }
      return success();
    };
    LogicalResult ok =
        TypeSwitch<Operation *, LogicalResult>(&o)
            .Case([&](llm::EmbeddingOp e) -> LogicalResult {
              if (e.getTokens() != tokensArg) {
                return fail(&o, "its token ids must be @forward's tokens argument");
              }
              op.kind = eval::OpKind::Embedding;
              op.weight = tensor(e.getTable());
              return success();
            })
            .Case([&](llm::RMSNormOp r) {
              op.kind = eval::OpKind::RMSNorm;
              op.weight = tensor(r.getWeight());
              op.eps = r.getEps().convertToFloat();
              return inputs({r.getInput()});
            })
            .Case([&](llm::LinearOp l) {
              op.kind = eval::OpKind::Linear;
              op.weight = tensor(l.getWeight());
              op.bias = l.getBias() ? tensor(l.getBias()) : -1;
              if (l.getNorm()) {
                op.norm = tensor(l.getNorm());
                op.eps = l.getNormEps()->convertToFloat();
              }
              op.swigluBlock =
                  static_cast<int64_t>(l.getSwigluBlock().value_or(0));
              if (Value r = l.getResidual()) {
                return inputs({l.getInput(), r});
              }
              return inputs({l.getInput()});
            })
            .Case([&](llm::RoPEOp r) -> LogicalResult {
              op.kind = eval::OpKind::RoPE;
              op.heads = r.getNumHeads();
              op.headDim = r.getHeadDim();
              op.theta = r.getTheta().convertToFloat();
              if (failed(position(r.getStart()))) {
                return failure();
              }
              return inputs({r.getInput()});
            })
            .Case([&](llm::AttentionOp a) -> LogicalResult {
              op.kind = eval::OpKind::Attention;
              op.heads = a.getNumHeads();
              op.kvHeads = a.getNumKvHeads();
              op.headDim = a.getHeadDim();
              op.layer = static_cast<int64_t>(a.getLayer());
              op.theta = a.getRopeTheta() ? a.getRopeTheta()->convertToFloat()
                                          : 0.0f;
              if (a.getCache() != cacheArg) {
                return fail(&o, "its cache must be @forward's cache argument");
              }
              if (failed(position(a.getStart()))) {
                return failure();
              }
              size_t layers = static_cast<size_t>(
                  cast<llm::KVCacheType>(cacheArg.getType()).getLayers());
              if (p.cache.size() < layers) {
                p.cache.resize(layers, llmc_cache_layer{0, 0});
              }
              llmc_cache_layer &c = p.cache[op.layer];
              if (c.kv_heads != 0) {
                return fail(&o, "cache layer " + Twine(op.layer) +
                                    " is used by two attention ops");
              }
              c = {op.kvHeads, op.headDim};
              return inputs({a.getQuery(), a.getKey(), a.getValue()});
            })
            .Case([&](llm::SiLUOp s) {
              op.kind = eval::OpKind::SiLU;
              return inputs({s.getInput()});
            })
            .Case([&](llm::AddOp a) {
              op.kind = eval::OpKind::Add;
              return inputs({a.getLhs(), a.getRhs()});
            })
            .Case([&](llm::MulOp m) {
              op.kind = eval::OpKind::Mul;
              return inputs({m.getLhs(), m.getRhs()});
            })
            .Case([&](llm::LMHeadOp h) {
              op.kind = eval::OpKind::LMHead;
              op.weight = tensor(h.getWeight());
              if (h.getNorm()) {
                op.norm = tensor(h.getNorm());
                op.eps = h.getNormEps()->convertToFloat();
              }
              return inputs({h.getInput()});
            })
            .Default([&](Operation *) {
              return fail(&o, "cannot evaluate " +
                                  o.getName().getStringRef());
            });
    if (failed(ok)) {
      return failure();
    }
    view.opIndex[&o] = p.ops.size();
    view.ops.push_back(&o);
    p.ops.push_back(std::move(op));
  }
  if (auto cache = dyn_cast<llm::KVCacheType>(cacheArg.getType())) {
    p.cache.resize(static_cast<size_t>(cache.getLayers()), llmc_cache_layer{0, 0});
  }
  p.numValues = next;
  return view;
}

eval::Weight bindWeight(llm::GlobalOp g,
                        std::deque<std::vector<float>> &storage) {
  llm::WeightType t = g.getWeightType();
  eval::Weight w;
  w.format = static_cast<int32_t>(t.getKind());
  w.group = static_cast<int32_t>(t.getGroupSize());
  w.asym = t.getAsymmetric() ? 1 : 0;
  w.shape.assign(t.getShape().begin(), t.getShape().end());
  if (!hasWeightValues(g)) {
    return w; // shapes only: no data to bind (the artifact's is synthesized)
  }
  auto dense = dyn_cast_if_present<DenseElementsAttr>(g.getDataAttr());
  if (auto r = dyn_cast_if_present<DenseResourceElementsAttr>(g.getDataAttr())) {
    if (AsmResourceBlob *blob = r.getRawHandle().getBlob()) {
      w.data = blob->getData().data();
    }
  } else if (dense && !dense.isSplat()) {
    w.data = dense.getRawData().data();
  } else {
    // Splats (tests) are expanded to f32 copies that `storage` keeps.
    storage.push_back(readFloatWeight(g).value_or(std::vector<float>()));
    w.data = storage.back().data();
    w.format = LLMC_FORMAT_F32;
  }
  return w;
}

std::vector<eval::Weight> bindWeights(const ProgramView &view,
                                      std::deque<std::vector<float>> &storage) {
  std::vector<eval::Weight> out;
  for (llm::GlobalOp g : view.globals) {
    out.push_back(bindWeight(g, storage));
  }
  return out;
}

} // namespace llmc
