// llm-fuse-projections: linears that read the same activation (q/k/v, gate/up) become one linear
// over the concatenated weight, with one result per former linear.
#include "passes/Passes.h"

#include "passes/WeightData.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/MapVector.h"

namespace llmc {
#define GEN_PASS_DEF_FUSEPROJECTIONSPASS
#include "passes/Passes.h.inc"
} // namespace llmc

using namespace mlir;
using namespace llmc;

namespace {

llm::GlobalOp globalRead(Value weight, SymbolTable &symbols) {
  auto ref = weight ? weight.getDefiningOp<llm::WeightOp>() : nullptr;
  return ref ? symbols.lookup<llm::GlobalOp>(ref.getGlobal()) : nullptr;
}

/// "model.layers.0.self_attn.q_proj.weight", "...k_proj.weight", ... ->
/// "model.layers.0.self_attn.qkv_proj.weight"; "...gate_proj.weight",
/// "...up_proj.weight" -> "...gate_up_proj.weight".
std::string fusedName(ArrayRef<llm::GlobalOp> globals) {
  std::vector<std::string> names;
  for (llm::GlobalOp g : globals) {
    names.push_back(llm::GlobalOp(g).getSymName().str());
  }
  size_t pre = 0, suf = 0;
  const std::string &a = names[0];
  auto agree = [&](auto at) {
    return llvm::all_of(names, [&](const std::string &n) { return at(n) == at(a); });
  };
  size_t shortest = a.size();
  for (const std::string &n : names) {
    shortest = std::min(shortest, n.size());
  }
  while (pre < shortest && agree([&](const std::string &n) { return n[pre]; })) {
    ++pre;
  }
  while (suf < shortest - pre &&
         agree([&](const std::string &n) { return n[n.size() - 1 - suf]; })) {
    ++suf;
  }
  // Cut at separators, so "q_proj" / "k_proj" keep "_proj" in the suffix.
  while (pre > 0 && a[pre - 1] != '.' && a[pre - 1] != '_') {
    --pre;
  }
  bool single = true;
  std::vector<std::string> mids;
  for (const std::string &n : names) {
    mids.push_back(n.substr(pre, n.size() - pre - suf));
    single &= mids.back().size() == 1;
  }
  std::string mid;
  for (size_t i = 0; i < mids.size(); ++i) {
    mid += (i && !single ? "_" : "") + mids[i];
  }
  return a.substr(0, pre) + mid + a.substr(a.size() - suf);
}

struct FuseProjectionsPass
    : llmc::impl::FuseProjectionsPassBase<FuseProjectionsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    auto forward = module.lookupSymbol<func::FuncOp>(kForwardFuncName);
    if (!forward) {
      return; // nothing to fuse
    }
    // Linears by the activation they read, in program order.
    llvm::MapVector<Value, SmallVector<llm::LinearOp>> byInput;
    // A linear with a fused norm, residual or SwiGLU stays alone: its
    // epilogue or input stage is its own.
    forward.walk([&](llm::LinearOp l) {
      if (!l.isFused()) {
        byInput[l.getInput()].push_back(l);
      }
    });
    OpBuilder b(&getContext());
    for (auto &[input, group] : byInput) {
      if (group.size() >= 2) {
        (void)fuse(group, symbols, b); // a group that cannot fuse stays apart
      }
    }
    // Globals that only the fused linears read are gone.
    for (llm::GlobalOp g : llvm::make_early_inc_range(module.getOps<llm::GlobalOp>())) {
      if (SymbolTable::symbolKnownUseEmpty(g, module)) {
        releaseWeightData(g); // the fused copy holds these bytes now
        symbols.erase(g);
      }
    }
  }

  /// Fuses `group` when every weight has the same storage (format, group
  /// size) and the biases agree (all present in one float format, or none).
  LogicalResult fuse(ArrayRef<llm::LinearOp> group, SymbolTable &symbols,
                     OpBuilder &b) {
    SmallVector<llm::GlobalOp> weights, biases;
    for (llm::LinearOp l : group) {
      llm::GlobalOp w = globalRead(l.getWeight(), symbols);
      llm::GlobalOp bias = globalRead(l.getBias(), symbols);
      if (!w || (l.getBias() && !bias)) {
        return failure();
      }
      weights.push_back(w);
      if (bias) {
        biases.push_back(bias);
      }
    }
    llm::WeightType w0 = weights[0].getWeightType();
    for (llm::GlobalOp w : weights) {
      llm::WeightType t = w.getWeightType();
      if (t.getKind() != w0.getKind() || t.getGroupSize() != w0.getGroupSize() ||
          t.getAsymmetric() != w0.getAsymmetric() ||
          t.getShape()[1] != w0.getShape()[1]) {
        return failure(); // mixed precision: leave these apart
      }
    }
    if (!biases.empty() &&
        (biases.size() != weights.size() ||
         llvm::any_of(biases, [&](llm::GlobalOp g) {
           return g.getWeightType().getKind() !=
                  biases[0].getWeightType().getKind();
         }))) {
      return failure();
    }
    // Row-wise formats concatenate by bytes: every row (and every row's
    // whole groups) stays as it was.
    auto concat = [&](ArrayRef<llm::GlobalOp> parts,
                      int64_t rows) -> FailureOr<llm::GlobalOp> {
      // Shapes only (a config compiled with --random-weights): the fused
      // global has none either.
      const bool values = llvm::all_of(parts, hasWeightValues);
      if (!values && llvm::any_of(parts, hasWeightValues)) {
        return failure();
      }
      std::vector<char> bytes;
      for (llm::GlobalOp g : values ? parts : ArrayRef<llm::GlobalOp>()) {
        std::optional<std::vector<char>> d = readStoredBytes(g);
        if (!d) {
          return failure();
        }
        bytes.insert(bytes.end(), d->begin(), d->end());
      }
      llm::WeightType t0 = llm::GlobalOp(parts[0]).getWeightType();
      SmallVector<int64_t> shape(t0.getShape());
      shape[0] = rows;
      auto t = llm::WeightType::get(&getContext(), shape, t0.getKind(),
                                    t0.getGroupSize(), t0.getAsymmetric());
      std::string name = fusedName(parts);
      b.setInsertionPoint(llm::GlobalOp(parts[0]));
      auto g = llm::GlobalOp::create(
          b, FusedLoc::get(&getContext(),
                           llvm::to_vector(llvm::map_range(
                               parts, [](llm::GlobalOp p) { return p->getLoc(); }))),
          b.getStringAttr(name), TypeAttr::get(t),
          values ? makeWeightData(t, name, bytes) : ElementsAttr());
      symbols.insert(g); // renames on a clash
      return g;
    };
    int64_t rows = 0;
    for (llm::GlobalOp w : weights) {
      rows += w.getWeightType().getShape()[0];
    }
    FailureOr<llm::GlobalOp> fusedW = concat(weights, rows);
    if (failed(fusedW)) {
      return failure();
    }
    FailureOr<llm::GlobalOp> fusedB = llm::GlobalOp();
    if (!biases.empty()) {
      fusedB = concat(biases, rows);
      if (failed(fusedB)) {
        symbols.erase(*fusedW);
        return failure();
      }
    }
    // The fused linear sits where the first one was: every result's users
    // come after their own linear, so after the first too.
    llm::LinearOp first = group[0];
    b.setInsertionPoint(first);
    Location loc = FusedLoc::get(
        &getContext(), llvm::to_vector(llvm::map_range(
                           group, [](llm::LinearOp l) { return l.getLoc(); })));
    auto ref = [&](llm::GlobalOp g) -> Value {
      return llm::WeightOp::create(b, loc, g.getWeightType(),
                                   FlatSymbolRefAttr::get(g.getSymNameAttr()));
    };
    Value wRef = ref(*fusedW);
    Value bRef = *fusedB ? ref(*fusedB) : Value();
    SmallVector<Type> types;
    for (llm::LinearOp l : group) {
      llvm::append_range(types, l->getResultTypes());
    }
    auto fused = llm::LinearOp::create(b, loc, types, first.getInput(), wRef, bRef);
    unsigned next = 0;
    for (llm::LinearOp l : group) {
      for (Value r : l->getResults()) {
        r.replaceAllUsesWith(fused->getResult(next++));
      }
    }
    for (llm::LinearOp l : group) {
      Value w = l.getWeight(), bias = l.getBias();
      l.erase();
      for (Value v : {w, bias}) {
        if (v && v.use_empty()) {
          v.getDefiningOp()->erase();
        }
      }
    }
    return success();
  }
};

} // namespace
