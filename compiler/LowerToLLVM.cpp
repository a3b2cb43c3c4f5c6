// llm-lower-to-llvm: @forward becomes llmc_forward, kernel calls plus generated elementwise loops.
#include "compiler/Passes.h"

#include "compiler/ArtifactBuilder.h"
#include "dialects/llm/LLMDialect.h"
#include "llmc/program.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cstddef>

namespace llmc {
#define GEN_PASS_DEF_LOWERTOLLVMPASS
#include "compiler/Passes.h.inc"
} // namespace llmc

using namespace mlir;
namespace llm = llmc::llm;

namespace {

// The format numbers the kernels take are the dialect's storage kinds.
static_assert(static_cast<int>(llm::StorageKind::f32) == LLMC_FORMAT_F32);
static_assert(static_cast<int>(llm::StorageKind::f16) == LLMC_FORMAT_F16);
static_assert(static_cast<int>(llm::StorageKind::bf16) == LLMC_FORMAT_BF16);
static_assert(static_cast<int>(llm::StorageKind::q8) == LLMC_FORMAT_Q8);
static_assert(static_cast<int>(llm::StorageKind::q4) == LLMC_FORMAT_Q4);
static_assert(static_cast<int>(llm::StorageKind::s24) == LLMC_FORMAT_S24);
static_assert(static_cast<int>(llm::StorageKind::s24q8) == LLMC_FORMAT_S24Q8);
static_assert(static_cast<int>(llm::StorageKind::s24q4) == LLMC_FORMAT_S24Q4);
static_assert(static_cast<int>(llm::StorageKind::q8x8) == LLMC_FORMAT_Q8X8);
static_assert(static_cast<int>(llm::StorageKind::q4x8) == LLMC_FORMAT_Q4X8);
static_assert(static_cast<int>(llm::StorageKind::f16x16) == LLMC_FORMAT_F16X16);
static_assert(llm::getMaxEnumValForStorageKind() == LLMC_FORMAT_F16X16,
              "a new storage kind needs an LLMC_FORMAT_* number");

// The descriptor's layout, field by field, as llmc_program declares it.
static_assert(offsetof(llmc_program, weights) == 48 &&
                  offsetof(llmc_program, num_cache_layers) == 56 &&
                  offsetof(llmc_program, cache_layers) == 64 &&
                  offsetof(llmc_program, target) == 72 &&
                  sizeof(llmc_program) == 80,
              "update createDescriptor with llmc_program");
static_assert(sizeof(llmc_weight_desc) == 32 && sizeof(llmc_cache_layer) == 16,
              "update createDescriptor with llmc_weight_desc/llmc_cache_layer");

class Lowering {
public:
  Lowering(ModuleOp module, func::FuncOp forward, bool cuda, int64_t vectorWidth)
      : module_(module), forward_(forward), ctx_(module.getContext()),
        b_(ctx_), loc_(forward.getLoc()), cuda_(cuda),
        vectorWidth_(vectorWidth) {
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
    auto offs = op->getAttrOfType<DenseI64ArrayAttr>(llmc::kOffsetsAttr);
    auto off = op->getAttrOfType<IntegerAttr>(llmc::kOffsetAttr);
    if (offs && static_cast<int64_t>(offs.size()) == op->getNumResults()) {
      for (auto [r, o] : llvm::zip(op->getResults(), offs.asArrayRef())) {
        buffers_[r] = arenaAt(o);
      }
      return success();
    }
    if (!off || op->getNumResults() != 1) {
      return op->emitError() << "llm-lower-to-llvm: no planned offset (run "
                                "llm-plan-memory first)";
    }
    buffers_[op->getResult(0)] = arenaAt(off.getInt());
    return success();
  }
  /// The LLVM value standing for an llm operand; an operand the lowering
  /// has no value for (not an argument or result it lowered) is an error,
  /// never a guess.
  FailureOr<Value> operand(Operation *op, Value v) {
    Value m = buffers_.lookup(v);
    if (!m) {
      op->emitError() << "llm-lower-to-llvm: operand #"
                      << (llvm::find(op->getOperands(), v) -
                          op->getOperands().begin())
                      << " has no lowered value";
      return failure();
    }
    return m;
  }
  /// out[i] = f(a[i], b[i]) for i < n * width, as generated loops: one
  /// over vector<W x f32> values (W = vectorWidth_), then a scalar one for
  /// the last n * width % W elements. `f` builds on scalars or vectors alike.
  void elementwise(Value out, Value a, Value bIn, int64_t w,
                   function_ref<Value(OpBuilder &, Location, Value, Value)> f) {
    Value total = LLVM::MulOp::create(b_, loc_, n_, i64(w));
    Value vw = i64(vectorWidth_);
    Value vecEnd = LLVM::MulOp::create(
        b_, loc_, LLVM::UDivOp::create(b_, loc_, total, vw), vw);
    auto loop = [&](Value from, Value to, Value step, Type t) {
      scf::ForOp::create(
          b_, loc_, from, to, step, ValueRange{},
          [&](OpBuilder &ib, Location l, Value iv, ValueRange) {
            auto at = [&](Value base) -> Value {
              return LLVM::GEPOp::create(ib, l, ptrT_, f32T_, base,
                                         ArrayRef<LLVM::GEPArg>{iv});
            };
            Value x = LLVM::LoadOp::create(ib, l, t, at(a), /*alignment=*/4);
            Value y = bIn ? LLVM::LoadOp::create(ib, l, t, at(bIn), 4).getResult()
                          : Value();
            LLVM::StoreOp::create(ib, l, f(ib, l, x, y), at(out), 4);
            scf::YieldOp::create(ib, l);
          });
    };
    loop(i64(0), vecEnd, vw, VectorType::get({vectorWidth_}, f32T_));
    loop(vecEnd, total, i64(1), f32T_);
  }
  /// 1.0 of `t` (f32, or a vector of f32).
  static Value one(OpBuilder &ib, Location l, Type t) {
    if (auto v = dyn_cast<VectorType>(t)) {
      return arith::ConstantOp::create(ib, l, DenseElementsAttr::get(v, 1.0f));
    }
    return arith::ConstantOp::create(ib, l, ib.getF32FloatAttr(1.0f));
  }
  LogicalResult lowerOp(Operation &op);
  void createDescriptor(int64_t arenaBytes, int64_t maxTokens,
                        uint64_t fingerprint, StringRef defaultWeights,
                        ArrayRef<llm::GlobalOp> globals,
                        ArrayRef<llmc_cache_layer> cache);
  /// Stack array of `values` (one per element), for kernels taking arrays.
  Value stackArray(Type elem, ArrayRef<Value> values) {
    Value arr = LLVM::AllocaOp::create(b_, loc_, ptrT_, elem,
                                       i64(static_cast<int64_t>(values.size())));
    for (auto [i, v] : llvm::enumerate(values)) {
      Value p = LLVM::GEPOp::create(b_, loc_, ptrT_, elem, arr,
                                    ArrayRef<LLVM::GEPArg>{static_cast<int32_t>(i)});
      LLVM::StoreOp::create(b_, loc_, v, p);
    }
    return arr;
  }

  ModuleOp module_;
  func::FuncOp forward_;
  MLIRContext *ctx_;
  OpBuilder b_;
  Location loc_;
  Type ptrT_, i64T_, i32T_, f32T_, voidT_;
  Value exec_, weights_, arena_, tokens_, n_, start_, rows_, logits_;
  Value cacheArg_; // @forward's cache argument
  /// --target cuda: elementwise ops are llmc_k_elementwise calls.
  bool cuda_;
  /// f32 lanes of the generated elementwise loops.
  int64_t vectorWidth_;
  /// SiLU ops folded into the multiply that is their one use (SWIGLU).
  llvm::DenseSet<Operation *> fusedSilu_;
  /// A call of llmc_k_elementwise over n rows of `width` floats.
  void elementwiseCall(int32_t op, Value y, Value a, Value b, int64_t width) {
    Value count = LLVM::MulOp::create(b_, loc_, n_, i64(width));
    call("llmc_k_elementwise",
         {exec_, i32(op), a, b ? b : LLVM::ZeroOp::create(b_, loc_, ptrT_).getResult(),
          y, count});
  }
  std::vector<llmc_cache_layer> cache_; // per layer, from the attention ops
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
        FailureOr<Value> ids = operand(e, e.getTokens());
        if (failed(ids)) {
          return failure();
        }
        call("llmc_k_embedding",
             {exec_, buffer(e.getTable()), st[0], st[1], st[2], *ids, n_,
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
        int64_t out = 0;
        SmallVector<Value> widths, outs;
        for (unsigned i = 0; i < l->getNumResults(); ++i) {
          out += l.getResultWidth(i);
          widths.push_back(i64(l.getResultWidth(i)));
          outs.push_back(buffer(l->getResult(i)));
        }
        if (l.isFused()) {
          // Norm, residual and SwiGLU fusions are the CPU kernels'.
          if (cuda_) {
            return l.emitError() << "llm-lower-to-llvm: a fused norm, "
                                    "residual or SwiGLU has no CUDA kernel "
                                    "(the CUDA target fuses at run time)";
          }
          Value none = LLVM::ZeroOp::create(b_, loc_, ptrT_);
          Value residual = none;
          if (Value r = l.getResidual()) {
            FailureOr<Value> rv = operand(l, r);
            if (failed(rv)) {
              return failure();
            }
            residual = *rv;
          }
          std::optional<uint64_t> swiglu = l.getSwigluBlock();
          call("llmc_k_linear_fused",
               {exec_, buffer(l.getInput()), n_, i64(width(l.getInput())),
                buffer(l.getWeight()), st[0], st[1], st[2],
                i64(swiglu ? 2 * out : out), bias, biasFmt,
                l.getNorm() ? buffer(l.getNorm()) : none,
                l.getNorm() ? format(l.getNorm()) : i32(0),
                f32(l.getNorm() ? l.getNormEps()->convertToFloat() : 0.0f),
                residual, i64(swiglu ? static_cast<int64_t>(*swiglu) : 0),
                i64(static_cast<int64_t>(outs.size())),
                stackArray(i64T_, widths), stackArray(ptrT_, outs)});
          return success();
        }
        if (outs.size() == 1) {
          call("llmc_k_linear",
               {exec_, buffer(l.getInput()), n_, i64(width(l.getInput())),
                buffer(l.getWeight()), st[0], st[1], st[2], i64(out), bias,
                biasFmt, outs[0]});
        } else {
          // A fused projection writes each result to its own buffer.
          call("llmc_k_linear_split",
               {exec_, buffer(l.getInput()), n_, i64(width(l.getInput())),
                buffer(l.getWeight()), st[0], st[1], st[2], i64(out), bias,
                biasFmt, i64(static_cast<int64_t>(outs.size())),
                stackArray(i64T_, widths), stackArray(ptrT_, outs)});
        }
        return success();
      })
      .Case([&](llm::RoPEOp r) -> LogicalResult {
        if (failed(assignBuffer(r))) {
          return failure();
        }
        FailureOr<Value> start = operand(r, r.getStart());
        if (failed(start)) {
          return failure();
        }
        call("llmc_k_rope",
             {exec_, buffer(r.getInput()), buffer(r.getResult()), n_,
              i64(r.getNumHeads()), i64(r.getHeadDim()),
              f32(r.getTheta().convertToFloat()), *start});
        return success();
      })
      .Case([&](llm::AttentionOp a) -> LogicalResult {
        if (failed(assignBuffer(a))) {
          return failure();
        }
        FailureOr<Value> start = operand(a, a.getStart());
        if (failed(start)) {
          return failure();
        }
        if (a.getCache() != cacheArg_) {
          return a.emitError() << "llm-lower-to-llvm: the cache must be "
                                  "@forward's cache argument";
        }
        // The program declares each cache layer's shape: its attention op's.
        int64_t layer = static_cast<int64_t>(a.getLayer());
        if (cache_[layer].kv_heads != 0) {
          return a.emitError() << "llm-lower-to-llvm: cache layer " << layer
                               << " is used twice";
        }
        cache_[layer] = {static_cast<int64_t>(a.getNumKvHeads()),
                         static_cast<int64_t>(a.getHeadDim())};
        if (std::optional<APFloat> theta = a.getRopeTheta()) {
          if (cuda_) {
            return a.emitError() << "llm-lower-to-llvm: attention with fused "
                                    "RoPE has no CUDA kernel";
          }
          call("llmc_k_attention_rope",
               {exec_, i64(layer), buffer(a.getQuery()), buffer(a.getKey()),
                buffer(a.getValue()), n_, *start, i64(a.getNumHeads()),
                i64(a.getNumKvHeads()), i64(a.getHeadDim()),
                f32(theta->convertToFloat()), buffer(a.getResult())});
          return success();
        }
        call("llmc_k_attention",
             {exec_, i64(layer), buffer(a.getQuery()), buffer(a.getKey()),
              buffer(a.getValue()), n_, *start, i64(a.getNumHeads()),
              i64(a.getNumKvHeads()), i64(a.getHeadDim()),
              buffer(a.getResult())});
        return success();
      })
      .Case([&](llm::SiLUOp s) -> LogicalResult {
        if (failed(assignBuffer(s))) {
          return failure();
        }
        if (cuda_) {
          // silu(g) * u in one pass when the multiply is the SiLU's only use.
          if (s->hasOneUse() && isa<llm::MulOp>(*s->getUsers().begin())) {
            fusedSilu_.insert(s);
            return success();
          }
          elementwiseCall(LLMC_EW_SILU, buffer(s.getResult()),
                          buffer(s.getInput()), Value(), width(s.getResult()));
          return success();
        }
        elementwise(buffer(s.getResult()), buffer(s.getInput()), Value(),
                    width(s.getResult()),
                    [](OpBuilder &ib, Location l, Value x, Value) -> Value {
                      // x * sigmoid(x) = x / (1 + exp(-x))
                      Value neg = arith::NegFOp::create(ib, l, x);
                      Value e = math::ExpOp::create(ib, l, neg);
                      Value den = arith::AddFOp::create(
                          ib, l, one(ib, l, x.getType()), e);
                      return arith::DivFOp::create(ib, l, x, den);
                    });
        return success();
      })
      .Case([&](llm::MulOp m) -> LogicalResult {
        if (failed(assignBuffer(m))) {
          return failure();
        }
        if (cuda_) {
          Operation *l = m.getLhs().getDefiningOp();
          Operation *r = m.getRhs().getDefiningOp();
          if (l && fusedSilu_.contains(l)) {
            elementwiseCall(LLMC_EW_SWIGLU, buffer(m.getResult()),
                            buffer(cast<llm::SiLUOp>(l).getInput()),
                            buffer(m.getRhs()), width(m.getResult()));
          } else if (r && fusedSilu_.contains(r)) {
            elementwiseCall(LLMC_EW_SWIGLU, buffer(m.getResult()),
                            buffer(cast<llm::SiLUOp>(r).getInput()),
                            buffer(m.getLhs()), width(m.getResult()));
          } else {
            elementwiseCall(LLMC_EW_MUL, buffer(m.getResult()),
                            buffer(m.getLhs()), buffer(m.getRhs()),
                            width(m.getResult()));
          }
          return success();
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
        if (cuda_) {
          elementwiseCall(LLMC_EW_ADD, buffer(a.getResult()),
                          buffer(a.getLhs()), buffer(a.getRhs()),
                          width(a.getResult()));
          return success();
        }
        elementwise(buffer(a.getResult()), buffer(a.getLhs()),
                    buffer(a.getRhs()), width(a.getResult()),
                    [](OpBuilder &ib, Location l, Value x, Value y) -> Value {
                      return arith::AddFOp::create(ib, l, x, y);
                    });
        return success();
      })
      .Case([&](llm::LMHeadOp h) -> LogicalResult {
        if (h.getNorm() && cuda_) {
          return h.emitError() << "llm-lower-to-llvm: an LM head with a fused "
                                  "norm has no CUDA kernel";
        }
        // Only the last `logits_rows` rows: x + (n - rows) * width floats.
        int64_t d = width(h.getInput());
        Value skip = LLVM::SubOp::create(b_, loc_, n_, rows_);
        Value skipElems = LLVM::MulOp::create(b_, loc_, skip, i64(d));
        Value x = LLVM::GEPOp::create(b_, loc_, ptrT_, f32T_,
                                      buffer(h.getInput()),
                                      ArrayRef<LLVM::GEPArg>{skipElems});
        Value none = LLVM::ZeroOp::create(b_, loc_, ptrT_);
        auto st = storage(h.getWeight());
        Value norm = h.getNorm();
        call("llmc_k_lm_head",
             {exec_, x, rows_, i64(d), buffer(h.getWeight()), st[0], st[1],
              st[2], i64(width(h.getResult())), norm ? buffer(norm) : none,
              norm ? format(norm) : i32(0),
              f32(norm ? h.getNormEps()->convertToFloat() : 0.0f), logits_});
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
                                uint64_t fingerprint, StringRef defaultWeights,
                                ArrayRef<llm::GlobalOp> globals,
                                ArrayRef<llmc_cache_layer> cache) {
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
  // llmc_weight_desc[num_weights]: what the program reads from weights[i].
  auto descT = LLVM::LLVMStructType::getLiteral(
      ctx_, {i32T_, i32T_, i32T_, i32T_, i64T_, i64T_});
  auto descArrT = LLVM::LLVMArrayType::get(descT, std::max<size_t>(globals.size(), 1));
  auto descs = LLVM::GlobalOp::create(b_, loc_, descArrT, /*isConstant=*/true,
                                      LLVM::Linkage::Internal,
                                      "llmc_weight_descs", Attribute());
  {
    OpBuilder::InsertionGuard g2(b_);
    b_.setInsertionPointToStart(b_.createBlock(&descs.getInitializerRegion()));
    Value arr = LLVM::ZeroOp::create(b_, loc_, descArrT);
    for (auto [i, gl] : llvm::enumerate(globals)) {
      llm::WeightType t = llm::GlobalOp(gl).getWeightType();
      Value d = LLVM::UndefOp::create(b_, loc_, descT);
      auto shape = t.getShape();
      Value fields[] = {i32(static_cast<int32_t>(t.getKind())),
                        i32(static_cast<int32_t>(t.getGroupSize())),
                        i32(t.getAsymmetric() ? 1 : 0),
                        i32(static_cast<int32_t>(shape.size())),
                        i64(shape[0]), i64(shape.size() == 2 ? shape[1] : 0)};
      for (auto [k, f] : llvm::enumerate(fields)) {
        d = LLVM::InsertValueOp::create(b_, loc_, d, f, static_cast<int64_t>(k));
      }
      arr = LLVM::InsertValueOp::create(b_, loc_, arr, d, static_cast<int64_t>(i));
    }
    LLVM::ReturnOp::create(b_, loc_, arr);
  }
  // llmc_cache_layer[num_cache_layers]: pairs of int64.
  SmallVector<int64_t> cacheWords;
  for (const llmc_cache_layer &c : cache) {
    cacheWords.push_back(c.kv_heads);
    cacheWords.push_back(c.head_dim);
  }
  if (cacheWords.empty()) {
    cacheWords = {0, 0};
  }
  auto cacheT = RankedTensorType::get({static_cast<int64_t>(cacheWords.size())},
                                      i64T_);
  LLVM::GlobalOp::create(
      b_, loc_, LLVM::LLVMArrayType::get(i64T_, cacheWords.size()),
      /*isConstant=*/true, LLVM::Linkage::Internal, "llmc_cache_layers",
      DenseIntElementsAttr::get(cacheT, ArrayRef<int64_t>(cacheWords)));

  auto structT = LLVM::LLVMStructType::getLiteral(
      ctx_, {i32T_, i32T_, i64T_, i64T_, i64T_, ptrT_, ptrT_, ptrT_, i64T_, ptrT_,
             i64T_});
  auto global = LLVM::GlobalOp::create(b_, loc_, structT, /*isConstant=*/true,
                                       LLVM::Linkage::External,
                                       "llmc_compiled_program", Attribute());
  Block *init = b_.createBlock(&global.getInitializerRegion());
  b_.setInsertionPointToStart(init);
  Value s = LLVM::UndefOp::create(b_, loc_, structT);
  auto put = [&](Value v, int64_t pos) {
    s = LLVM::InsertValueOp::create(b_, loc_, s, v, pos);
  };
  put(i32(LLMC_PROGRAM_ABI_VERSION), 0);
  put(i32(static_cast<int32_t>(globals.size())), 1);
  put(i64(arenaBytes), 2);
  put(i64(maxTokens), 3);
  put(i64(static_cast<int64_t>(fingerprint)), 4);
  put(LLVM::AddressOfOp::create(b_, loc_, ptrT_, "llmc_forward"), 5);
  put(defaultWeights.empty()
          ? LLVM::ZeroOp::create(b_, loc_, ptrT_).getResult()
          : LLVM::AddressOfOp::create(b_, loc_, ptrT_, "llmc_default_weights")
                .getResult(),
      6);
  put(LLVM::AddressOfOp::create(b_, loc_, ptrT_, "llmc_weight_descs"), 7);
  put(i64(static_cast<int64_t>(cache.size())), 8);
  put(LLVM::AddressOfOp::create(b_, loc_, ptrT_, "llmc_cache_layers"), 9);
  put(i64(cuda_ ? LLMC_TARGET_CUDA : LLMC_TARGET_CPU), 10);
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
  if (body.getNumArguments() != 3 ||
      !isa<llm::KVCacheType>(body.getArgument(2).getType())) {
    return forward_.emitError() << "llm-lower-to-llvm: @forward must take "
                                   "(tokens, start, cache)";
  }
  // @forward's arguments are the entry point's: the ops read them through
  // their operands.
  buffers_[body.getArgument(0)] = tokens_;
  buffers_[body.getArgument(1)] = start_;
  cacheArg_ = body.getArgument(2);
  cache_.assign(static_cast<size_t>(
                    cast<llm::KVCacheType>(cacheArg_.getType()).getLayers()),
                llmc_cache_layer{0, 0});
  for (Operation &op : body) {
    if (failed(lowerOp(op))) {
      return failure();
    }
  }
  createDescriptor(arenaAttr.getInt(), maxAttr.getInt(), fingerprint,
                   defaultWeights, globals, cache_);
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
    if (target != "cpu" && target != "cuda") {
      module.emitError() << "llm-lower-to-llvm: unknown target '" << target
                         << "' (cpu or cuda)";
      return signalPassFailure();
    }
    if (vectorWidth < 1 || vectorWidth > 64) {
      module.emitError() << "llm-lower-to-llvm: vector-width must be 1..64";
      return signalPassFailure();
    }
    Lowering lowering(module, forward, target == "cuda", vectorWidth);
    uint64_t fp = fingerprint != 0 ? uint64_t(fingerprint)
                                   : llmc::tensorFingerprint(module);
    if (failed(lowering.run(fp, defaultWeights))) {
      return signalPassFailure();
    }
    // exp as MLIR's polynomial (arith and math.fma on the loop's vectors),
    // not a libm call the vector loop would make once per lane. Only the
    // exp ops and what their rewrite makes: no folding or constant
    // hoisting, so the lowered code keeps the order it was built in.
    SmallVector<Operation *> exps;
    module.walk([&](math::ExpOp e) { exps.push_back(e); });
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(patterns, [](StringRef name) {
      name.consume_front("math.");
      return name == "exp";
    });
    GreedyRewriteConfig config;
    config.setStrictness(GreedyRewriteStrictness::ExistingAndNewOps);
    config.enableFolding(false);
    if (!exps.empty() &&
        failed(applyOpPatternsGreedily(exps, std::move(patterns), config))) {
      module.emitError() << "llm-lower-to-llvm: the exp approximation did "
                            "not converge";
      return signalPassFailure();
    }
  }
};

} // namespace
