// llm-lower-to-llvm: @forward becomes llmc_forward, kernel calls plus generated elementwise loops.
#include "compiler/Passes.h"

#include "compiler/Importer.h"
#include "dialects/llm/LLMDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/TypeSwitch.h"

namespace llmc {
#define GEN_PASS_DEF_LOWERTOLLVMPASS
#include "compiler/Passes.h.inc"
} // namespace llmc

using namespace mlir;
namespace llm = llmc::llm;

namespace {

// Must match llmc_program in runtime/include/llmc/program.h.
constexpr int32_t kProgramAbiVersion = 2;

class Lowering {
public:
  Lowering(ModuleOp module, func::FuncOp forward)
      : module_(module), forward_(forward), ctx_(module.getContext()),
        b_(ctx_), loc_(forward.getLoc()) {
    ptrT_ = LLVM::LLVMPointerType::get(ctx_);
    i64T_ = b_.getI64Type();
    i32T_ = b_.getI32Type();
    f32T_ = b_.getF32Type();
    voidT_ = LLVM::LLVMVoidType::get(ctx_);
  }

  LogicalResult run(uint64_t fingerprint, StringRef defaultWeights);

private:
  LLVM::LLVMFuncOp declare(StringRef name, ArrayRef<Type> args) {
    if (auto f = module_.lookupSymbol<LLVM::LLVMFuncOp>(name)) {
      return f;
    }
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(module_.getBody());
    return LLVM::LLVMFuncOp::create(b_, loc_, name,
                                    LLVM::LLVMFunctionType::get(voidT_, args));
  }
  void call(StringRef name, ArrayRef<Value> args) {
    SmallVector<Type> types;
    for (Value v : args) {
      types.push_back(v.getType());
    }
    LLVM::CallOp::create(b_, loc_, declare(name, types), args);
  }
  Value i64(int64_t v) {
    return LLVM::ConstantOp::create(b_, loc_, i64T_, b_.getI64IntegerAttr(v));
  }
  Value i32(int32_t v) {
    return LLVM::ConstantOp::create(b_, loc_, i32T_, b_.getI32IntegerAttr(v));
  }
  Value f32(float v) {
    return LLVM::ConstantOp::create(b_, loc_, f32T_, b_.getF32FloatAttr(v));
  }
  /// arena + byte offset
  Value arenaAt(int64_t offset) {
    // A Value index: arena offsets can exceed GEP's 32-bit constant indices.
    return LLVM::GEPOp::create(b_, loc_, ptrT_, b_.getI8Type(), arena_,
                               ArrayRef<LLVM::GEPArg>{i64(offset)});
  }
  Value buffer(Value v) { return buffers_.lookup(v); }
  int64_t width(Value v) {
    return cast<RankedTensorType>(v.getType()).getDimSize(1);
  }
  /// The (format, group, asym) triple that describes a weight to a kernel.
  SmallVector<Value, 3> storage(Value weight) {
    auto t = cast<llm::WeightType>(weight.getType());
    return {i32(static_cast<int32_t>(t.getKind())),
            i32(static_cast<int32_t>(t.getGroupSize())),
            i32(t.getAsymmetric() ? 1 : 0)};
  }
  Value format(Value weight) { return storage(weight)[0]; }
  LogicalResult assignBuffer(Operation *op) {
    auto off = op->getAttrOfType<IntegerAttr>(llmc::kOffsetAttr);
    if (!off) {
      return op->emitError() << "llm-lower-to-llvm: no planned offset (run "
                                "llm-plan-memory first)";
    }
    buffers_[op->getResult(0)] = arenaAt(off.getInt());
    return success();
  }
  /// out[i] = f(a[i], b[i]) for i < n * width, as a generated loop.
  void elementwise(Value out, Value a, Value bIn, int64_t w,
                   function_ref<Value(OpBuilder &, Location, Value, Value)> f) {
    Value total = LLVM::MulOp::create(b_, loc_, n_, i64(w));
    scf::ForOp::create(
        b_, loc_, i64(0), total, i64(1), ValueRange{},
        [&](OpBuilder &ib, Location l, Value iv, ValueRange) {
          auto load = [&](Value base) -> Value {
            Value p = LLVM::GEPOp::create(ib, l, ptrT_, f32T_, base,
                                          ArrayRef<LLVM::GEPArg>{iv});
            return LLVM::LoadOp::create(ib, l, f32T_, p);
          };
          Value x = load(a);
          Value y = bIn ? load(bIn) : Value();
          Value r = f(ib, l, x, y);
          Value p = LLVM::GEPOp::create(ib, l, ptrT_, f32T_, out,
                                        ArrayRef<LLVM::GEPArg>{iv});
          LLVM::StoreOp::create(ib, l, r, p);
          scf::YieldOp::create(ib, l);
        });
  }
  LogicalResult lowerOp(Operation &op);
  void createDescriptor(int64_t arenaBytes, int64_t maxTokens,
                        uint64_t fingerprint, StringRef defaultWeights);

  ModuleOp module_;
  func::FuncOp forward_;
  MLIRContext *ctx_;
  OpBuilder b_;
  Location loc_;
  Type ptrT_, i64T_, i32T_, f32T_, voidT_;
  Value exec_, weights_, arena_, tokens_, n_, start_, rows_, logits_;
  llvm::StringMap<int64_t> globalIndex_;
  llvm::DenseMap<Value, Value> buffers_; // tensor or weight -> pointer
  LLVM::LLVMFuncOp newFunc_;
};

LogicalResult Lowering::lowerOp(Operation &op) {
  return TypeSwitch<Operation *, LogicalResult>(&op)
      .Case([&](llm::WeightOp w) -> LogicalResult {
        auto it = globalIndex_.find(w.getGlobal());
        if (it == globalIndex_.end()) {
          return w.emitError() << "unknown global @" << w.getGlobal();
        }
        Value slot = LLVM::GEPOp::create(b_, loc_, ptrT_, ptrT_, weights_,
                                         ArrayRef<LLVM::GEPArg>{i64(it->second)});
        buffers_[w.getResult()] = LLVM::LoadOp::create(b_, loc_, ptrT_, slot);
        return success();
      })
      .Case([&](llm::EmbeddingOp e) -> LogicalResult {
        if (failed(assignBuffer(e))) {
          return failure();
        }
        auto st = storage(e.getTable());
        call("llmc_k_embedding",
             {exec_, buffer(e.getTable()), st[0], st[1], st[2], tokens_, n_,
              i64(width(e.getResult())), buffer(e.getResult())});
        return success();
      })
      .Case([&](llm::RMSNormOp r) -> LogicalResult {
        if (failed(assignBuffer(r))) {
          return failure();
        }
        call("llmc_k_rms_norm",
             {exec_, buffer(r.getInput()), n_, i64(width(r.getInput())),
              buffer(r.getWeight()), format(r.getWeight()),
              f32(r.getEps().convertToFloat()), buffer(r.getResult())});
        return success();
      })
      .Case([&](llm::LinearOp l) -> LogicalResult {
        if (failed(assignBuffer(l))) {
          return failure();
        }
        Value bias = l.getBias() ? buffer(l.getBias())
                                 : LLVM::ZeroOp::create(b_, loc_, ptrT_).getResult();
        Value biasFmt = l.getBias() ? format(l.getBias()) : i32(0);
        auto st = storage(l.getWeight());
        call("llmc_k_linear",
             {exec_, buffer(l.getInput()), n_, i64(width(l.getInput())),
              buffer(l.getWeight()), st[0], st[1], st[2],
              i64(width(l.getResult())), bias, biasFmt, buffer(l.getResult())});
        return success();
      })
      .Case([&](llm::RoPEOp r) -> LogicalResult {
        if (failed(assignBuffer(r))) {
          return failure();
        }
        call("llmc_k_rope",
             {exec_, buffer(r.getInput()), buffer(r.getResult()), n_,
              i64(r.getNumHeads()), i64(r.getHeadDim()),
              f32(r.getTheta().convertToFloat()), start_});
        return success();
      })
      .Case([&](llm::AttentionOp a) -> LogicalResult {
        if (failed(assignBuffer(a))) {
          return failure();
        }
        call("llmc_k_attention",
             {exec_, i64(a.getLayer()), buffer(a.getQuery()),
              buffer(a.getKey()), buffer(a.getValue()), n_, start_,
              i64(a.getNumHeads()), i64(a.getNumKvHeads()),
              i64(a.getHeadDim()), buffer(a.getResult())});
        return success();
      })
      .Case([&](llm::SiLUOp s) -> LogicalResult {
        if (failed(assignBuffer(s))) {
          return failure();
        }
        elementwise(buffer(s.getResult()), buffer(s.getInput()), Value(),
                    width(s.getResult()),
                    [](OpBuilder &ib, Location l, Value x, Value) -> Value {
                      // x * sigmoid(x) = x / (1 + exp(-x))
                      Value neg = arith::NegFOp::create(ib, l, x);
                      Value e = math::ExpOp::create(ib, l, neg);
                      Value one = arith::ConstantOp::create(
                          ib, l, ib.getF32FloatAttr(1.0f));
                      Value den = arith::AddFOp::create(ib, l, one, e);
                      return arith::DivFOp::create(ib, l, x, den);
                    });
        return success();
      })
      .Case([&](llm::MulOp m) -> LogicalResult {
        if (failed(assignBuffer(m))) {
          return failure();
        }
        elementwise(buffer(m.getResult()), buffer(m.getLhs()),
                    buffer(m.getRhs()), width(m.getResult()),
                    [](OpBuilder &ib, Location l, Value x, Value y) -> Value {
                      return arith::MulFOp::create(ib, l, x, y);
                    });
        return success();
      })
      .Case([&](llm::AddOp a) -> LogicalResult {
        if (failed(assignBuffer(a))) {
          return failure();
        }
        elementwise(buffer(a.getResult()), buffer(a.getLhs()),
                    buffer(a.getRhs()), width(a.getResult()),
                    [](OpBuilder &ib, Location l, Value x, Value y) -> Value {
                      return arith::AddFOp::create(ib, l, x, y);
                    });
        return success();
      })
      .Case([&](llm::LMHeadOp h) -> LogicalResult {
        // Only the last `logits_rows` rows: x + (n - rows) * width floats.
        int64_t d = width(h.getInput());
        Value skip = LLVM::SubOp::create(b_, loc_, n_, rows_);
        Value skipElems = LLVM::MulOp::create(b_, loc_, skip, i64(d));
        Value x = LLVM::GEPOp::create(b_, loc_, ptrT_, f32T_,
                                      buffer(h.getInput()),
                                      ArrayRef<LLVM::GEPArg>{skipElems});
        Value none = LLVM::ZeroOp::create(b_, loc_, ptrT_);
        auto st = storage(h.getWeight());
        call("llmc_k_linear", {exec_, x, rows_, i64(d), buffer(h.getWeight()),
                               st[0], st[1], st[2], i64(width(h.getResult())),
                               none, i32(0), logits_});
        return success();
      })
      .Case([&](func::ReturnOp) -> LogicalResult {
        LLVM::ReturnOp::create(b_, loc_, ValueRange{});
        return success();
      })
      .Default([&](Operation *o) -> LogicalResult {
        return o->emitError() << "llm-lower-to-llvm: cannot lower "
                              << o->getName();
      });
}

void Lowering::createDescriptor(int64_t arenaBytes, int64_t maxTokens,
                                uint64_t fingerprint,
                                StringRef defaultWeights) {
  OpBuilder::InsertionGuard g(b_);
  b_.setInsertionPointToEnd(module_.getBody());
  if (!defaultWeights.empty()) {
    std::string str = defaultWeights.str();
    str.push_back('\0');
    auto arrT = LLVM::LLVMArrayType::get(b_.getI8Type(), str.size());
    LLVM::GlobalOp::create(b_, loc_, arrT, /*isConstant=*/true,
                           LLVM::Linkage::Internal, "llmc_default_weights",
                           b_.getStringAttr(str));
  }
  auto structT = LLVM::LLVMStructType::getLiteral(
      ctx_, {i32T_, i32T_, i64T_, i64T_, i64T_, ptrT_, ptrT_});
  auto global = LLVM::GlobalOp::create(b_, loc_, structT, /*isConstant=*/true,
                                       LLVM::Linkage::External,
                                       "llmc_compiled_program", Attribute());
  Block *init = b_.createBlock(&global.getInitializerRegion());
  b_.setInsertionPointToStart(init);
  Value s = LLVM::UndefOp::create(b_, loc_, structT);
  auto put = [&](Value v, int64_t pos) {
    s = LLVM::InsertValueOp::create(b_, loc_, s, v, pos);
  };
  put(i32(kProgramAbiVersion), 0);
  put(i32(static_cast<int32_t>(globalIndex_.size())), 1);
  put(i64(arenaBytes), 2);
  put(i64(maxTokens), 3);
  put(i64(static_cast<int64_t>(fingerprint)), 4);
  put(LLVM::AddressOfOp::create(b_, loc_, ptrT_, "llmc_forward"), 5);
  put(defaultWeights.empty()
          ? LLVM::ZeroOp::create(b_, loc_, ptrT_).getResult()
          : LLVM::AddressOfOp::create(b_, loc_, ptrT_, "llmc_default_weights")
                .getResult(),
      6);
  LLVM::ReturnOp::create(b_, loc_, s);
}

LogicalResult Lowering::run(uint64_t fingerprint, StringRef defaultWeights) {
  int64_t idx = 0;
  SmallVector<llm::GlobalOp> globals;
  for (llm::GlobalOp g : module_.getOps<llm::GlobalOp>()) {
    globalIndex_[g.getSymName()] = idx++;
    globals.push_back(g);
  }
  auto arenaAttr = forward_->getAttrOfType<IntegerAttr>(llmc::kArenaBytesAttr);
  auto maxAttr = forward_->getAttrOfType<IntegerAttr>(llmc::kMaxTokensAttr);
  if (!arenaAttr || !maxAttr) {
    return forward_.emitError()
           << "llm-lower-to-llvm: @forward has no memory plan (run "
              "llm-plan-memory first)";
  }

  b_.setInsertionPointToEnd(module_.getBody());
  auto fnT = LLVM::LLVMFunctionType::get(
      voidT_, {ptrT_, ptrT_, ptrT_, ptrT_, i64T_, i64T_, i64T_, ptrT_});
  newFunc_ = LLVM::LLVMFuncOp::create(b_, loc_, "llmc_forward", fnT);
  Block *entry = newFunc_.addEntryBlock(b_);
  exec_ = entry->getArgument(0);
  weights_ = entry->getArgument(1);
  arena_ = entry->getArgument(2);
  tokens_ = entry->getArgument(3);
  n_ = entry->getArgument(4);
  start_ = entry->getArgument(5);
  rows_ = entry->getArgument(6);
  logits_ = entry->getArgument(7);
  b_.setInsertionPointToStart(entry);

  Block &body = forward_.getBody().front();
  if (body.getNumArguments() != 3) {
    return forward_.emitError() << "llm-lower-to-llvm: @forward must take "
                                   "(tokens, start, cache)";
  }
  for (Operation &op : body) {
    if (failed(lowerOp(op))) {
      return failure();
    }
  }
  createDescriptor(arenaAttr.getInt(), maxAttr.getInt(), fingerprint,
                   defaultWeights);
  forward_.erase();
  for (llm::GlobalOp g : globals) {
    g.erase();
  }
  module_->removeAttr(llm::kConfigAttrName);
  return success();
}

struct LowerToLLVMPass : llmc::impl::LowerToLLVMPassBase<LowerToLLVMPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>(llmc::kForwardFuncName);
    if (!forward) {
      module.emitError() << "llm-lower-to-llvm: no @"
                         << llmc::kForwardFuncName << " function";
      return signalPassFailure();
    }
    Lowering lowering(module, forward);
    if (failed(lowering.run(fingerprint, defaultWeights))) {
      signalPassFailure();
    }
  }
};

} // namespace
