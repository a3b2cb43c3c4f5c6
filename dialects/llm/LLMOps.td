// ODS for the `llm` dialect: the LLaMA decoder at the level of its layers' ops.
#ifndef LLMC_DIALECTS_LLM_LLMOPS_TD
#define LLMC_DIALECTS_LLM_LLMOPS_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

//===----------------------------------------------------------------------===//
// Dialect
//===----------------------------------------------------------------------===//

def LLM_Dialect : Dialect {
  let name = "llm";
  let cppNamespace = "::llmc::llm";
  let summary = "Transformer-level ops of LLaMA-family decoders";
  let description = [{
    The `llm` dialect describes a decoder-only transformer at the granularity
    of its layers: embedding lookup, RMSNorm, linear projections, rotary
    embeddings, grouped-query attention over a runtime-owned KV cache, SiLU and
    elementwise arithmetic, and the logits projection. Weights are
    module-level `llm.global` symbols whose storage format (f32, f16, bf16,
    and the compressed formats added by passes) is part of their type, so
    every compression pass is visible in the IR. Activations are f32 tensors
    whose leading (sequence) dimension is dynamic.
  }];
  let useDefaultTypePrinterParser = 1;
  let hasOperationAttrVerify = 1;
  let extraClassDeclaration = [{
    void registerTypes();
  }];
}

class LLM_Op<string mnemonic, list<Trait> traits = []>
    : Op<LLM_Dialect, mnemonic, traits>;

//===----------------------------------------------------------------------===//
// Storage formats and types
//===----------------------------------------------------------------------===//

def LLM_StorageKind : I32EnumAttr<"StorageKind", "how a weight's elements are stored", [
    I32EnumAttrCase<"f32", 0>,
    I32EnumAttrCase<"f16", 1>,
    I32EnumAttrCase<"bf16", 2>,
    I32EnumAttrCase<"q8", 3>,
    I32EnumAttrCase<"q4", 4>,
    I32EnumAttrCase<"s24", 5>,
    I32EnumAttrCase<"s24q8", 6>,
    I32EnumAttrCase<"s24q4", 7>,
    I32EnumAttrCase<"q8x8", 8>,
    I32EnumAttrCase<"q4x8", 9>,
    I32EnumAttrCase<"f16x16", 10>,
  ]> {
  let cppNamespace = "::llmc::llm";
  let genSpecializedAttr = 0;
}

class LLM_Type<string name, string typeMnemonic, list<Trait> traits = []>
    : TypeDef<LLM_Dialect, name, traits> {
  let mnemonic = typeMnemonic;
}

def LLM_WeightType : LLM_Type<"Weight", "weight"> {
  let summary = "a weight tensor with its storage format";
  let description = [{
    A static-shaped weight (for a linear layer `[out, in]`, for a norm `[n]`)
    and the format its bytes are stored in. Floating formats store elements
    densely in row-major order. Block formats (`q8<gG>`, `q4<gG[, asym]>`)
    quantize each row in groups of G consecutive elements (G a multiple of
    32); a row whose length is not a multiple of G is padded to whole groups.
    The block layouts are those of runtime/kernels/quant.h. `s24` is 2:4
    sparse: of every 4 consecutive elements of a row, 2 are stored (f16)
    with their positions, 36 bytes per 32 columns (rows padded); `s24q8`
    and `s24q4` store the 16 kept values of each 32 columns as int8 / int4
    codes under one f16 scale (22 and 14 bytes per 32 columns). `q8x8` and
    `q4x8` hold the bytes of symmetric `q8`/`q4` with the rows interleaved in
    groups of 8 (per group of columns: the 8 scales, then the 8 rows' codes),
    the layout the CPU kernels read; `llm-interleave-weights` makes them,
    and `f16x16`: f16 with each group of 16 rows stored column by column.

    ```mlir
    !llm.weight<172x64, f32>
    !llm.weight<512x64, q4<g32, asym>>
    ```
  }];
  let parameters = (ins
    ArrayRefParameter<"int64_t", "shape">:$shape,
    "StorageKind":$kind,
    DefaultValuedParameter<"int64_t", "0">:$groupSize,
    DefaultValuedParameter<"bool", "false">:$asymmetric
  );
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let builders = [
    TypeBuilder<(ins "llvm::ArrayRef<int64_t>":$shape, "StorageKind":$kind), [{
      return $_get($_ctxt, shape, kind, 0, false);
    }]>
  ];
  let extraClassDeclaration = [{
    /// Number of logical elements.
    int64_t getNumElements() const;
    /// Number of bytes the weight occupies in its storage format.
    int64_t getStorageBytes() const;
    /// True for f32, f16 and bf16.
    bool isFloat() const;
    /// True for the 2:4 sparse formats (s24, s24q8, s24q4).
    bool isSparse() const;
    /// True for the row-interleaved formats (q8x8, q4x8, f16x16).
    bool isInterleaved() const;
    /// Same shape, another format.
    WeightType withFormat(StorageKind kind, int64_t groupSize = 0,
                          bool asymmetric = false) const;
  }];
}

def LLM_KVCacheType : LLM_Type<"KVCache", "kv_cache"> {
  let summary = "the runtime-owned key/value cache of all layers";
  let description = [{
    Handle to the KV cache owned by the runtime: `layers` cache layers with
    room for `max_seq` positions each. The shape of a layer (KV heads and
    head_dim) is that of the one `llm.attention` op that uses it, so layers
    may differ (pruned models); the compiler writes the layout into the
    program, and the runtime allocates the cache from it.

    ```mlir
    !llm.kv_cache<layers = 5, max_seq = 512>
    ```
  }];
  let parameters = (ins "int64_t":$layers, "int64_t":$max_seq);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def LLM_Activation : RankedTensorOf<[F32]>;
def LLM_TokenIds : 1DTensorOf<[I32]>;

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

def LLM_GlobalOp : LLM_Op<"global", [Symbol, IsolatedFromAbove]> {
  let summary = "a module-level weight with its data";
  let description = [{
    Declares a weight. `data` holds the stored bytes: for floating formats an
    elements attribute of the weight's shape and element type (imported
    checkpoints use `dense_resource` blobs that point into the mmap'ed
    safetensors file, so nothing is copied); for block formats a 1-D `i8`
    tensor of the format's byte size.

    A global without `data` has a shape and a format but no values: it comes
    from compiling a config alone (`llmc compile config.json
    --random-weights`), where the executable synthesizes every weight at
    load. Passes that only change a weight's format or layout retype it;
    passes that need its values refuse the module.

    ```mlir
    llm.global @model.norm.weight : !llm.weight<64, f32> = dense_resource<w0> : tensor<64xf32>
    llm.global @model.layers.0.mlp.up_proj.weight : !llm.weight<160x64, q4<g32>>
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name,
                       TypeAttrOf<LLM_WeightType>:$type,
                       OptionalAttr<ElementsAttr>:$data);
  let assemblyFormat = "$sym_name `:` $type (`=` $data^)? attr-dict";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    WeightType getWeightType() { return llvm::cast<WeightType>(getType()); }
  }];
}

def LLM_WeightOp : LLM_Op<"weight", [Pure,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "a reference to an `llm.global` weight";
  let description = [{
    Makes the weight named by `global` available as a value. The result type
    must equal the global's type.

    ```mlir
    %w = llm.weight @model.norm.weight : !llm.weight<64, f32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$global);
  let results = (outs LLM_WeightType:$result);
  let assemblyFormat = "$global attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Layer ops
//===----------------------------------------------------------------------===//

def LLM_EmbeddingOp : LLM_Op<"embedding", [Pure]> {
  let summary = "token embedding lookup";
  let description = [{
    Gathers row `tokens[i]` of the `[vocab, hidden]` table for each token.

    ```mlir
    %x = llm.embedding %ids, %table : tensor<?xi32>, !llm.weight<512x64, f32> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins LLM_TokenIds:$tokens, LLM_WeightType:$table);
  let results = (outs LLM_Activation:$result);
  let assemblyFormat = [{
    $tokens `,` $table attr-dict `:` type($tokens) `,` type($table) `->` type($result)
  }];
  let hasVerifier = 1;
}

def LLM_RMSNormOp : LLM_Op<"rms_norm", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "root-mean-square normalization";
  let description = [{
    `y = w * x / sqrt(mean(x^2) + eps)` over the last dimension.

    ```mlir
    %y = llm.rms_norm %x, %w {eps = 1.0e-05 : f32} : tensor<?x64xf32>, !llm.weight<64, f32>
    ```
  }];
  let arguments = (ins LLM_Activation:$input, LLM_WeightType:$weight, F32Attr:$eps);
  let results = (outs LLM_Activation:$result);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` type($input) `,` type($weight)
  }];
  let hasVerifier = 1;
}

def LLM_LinearOp : LLM_Op<"linear", [Pure, AttrSizedOperandSegments]> {
  let summary = "x · Wᵀ (+ bias), optionally split into several results";
  let description = [{
    Multiplies each row of `input` (`[n, in]`) by the transposed weight
    (`[out, in]`), adding the optional `[out]` bias. With several results the
    `out` output columns are cut, in order, into one result per consumer:
    result `p` holds the next `width(p)` columns as a tensor of its own, so a
    fused projection (q/k/v, gate/up) feeds each consumer without a copy.
    The widths of the results add up to `out`.

    Fusions (made by the llm-fuse-* passes for the CPU target):
    - `norm(%g : W)` with `norm_eps`: the input rows are RMS-normalized with
      weight `%g` first (llm.rms_norm folded into the product's input
      stage); `input` is then the un-normalized stream.
    - `residual(%r : T)`: `%r` (of the single result's type) is added to the
      product after the bias (the residual add as the epilogue).
    - `swiglu_block = B`: the single result is silu(gate) · up, where the
      weight's rows come in blocks of B gate rows then B up rows (the last
      block b < B of each); the weight has two rows per result column.

    ```mlir
    %q = llm.linear %x, %wq : tensor<?x64xf32>, !llm.weight<64x64, f16> -> tensor<?x64xf32>
    %b = llm.linear %x, %w bias %bias : tensor<?x64xf32>, !llm.weight<32x64, f32>, !llm.weight<32, f32> -> tensor<?x32xf32>
    %q, %k, %v = llm.linear %x, %wqkv : tensor<?x64xf32>, !llm.weight<128x64, q4<g32>>
        -> tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>
    %h = llm.linear %x, %wgu norm(%g : !llm.weight<64, f32>) {norm_eps = 1.0e-05 : f32, swiglu_block = 16 : i64}
        : tensor<?x64xf32>, !llm.weight<344x64, q8<g32>> -> tensor<?x172xf32>
    %y = llm.linear %h, %wd residual(%x : tensor<?x64xf32>) : tensor<?x172xf32>, !llm.weight<64x172, q8<g32>> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins LLM_Activation:$input, LLM_WeightType:$weight,
                       Optional<LLM_WeightType>:$bias,
                       Optional<LLM_WeightType>:$norm,
                       Optional<LLM_Activation>:$residual,
                       OptionalAttr<F32Attr>:$norm_eps,
                       OptionalAttr<I64Attr>:$swiglu_block);
  let results = (outs Variadic<LLM_Activation>:$results);
  let assemblyFormat = [{
    $input `,` $weight (`bias` $bias^)? (`norm` `(` $norm^ `:` type($norm) `)`)?
    (`residual` `(` $residual^ `:` type($residual) `)`)? attr-dict `:`
    type($input) `,` type($weight) (`,` type($bias)^)? `->` type($results)
  }];
  let builders = [
    // An unfused linear.
    OpBuilder<(ins "mlir::TypeRange":$results, "mlir::Value":$input,
                   "mlir::Value":$weight, "mlir::Value":$bias), [{
      build($_builder, $_state, results, input, weight, bias, mlir::Value(),
            mlir::Value(), nullptr, nullptr);
    }]>
  ];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
  let extraClassDeclaration = [{
    /// The single result of an unsplit linear.
    mlir::Value getResult() { return getResults().front(); }
    /// Features per row of result `i`.
    int64_t getResultWidth(unsigned i) {
      return llvm::cast<mlir::RankedTensorType>(getResults()[i].getType())
          .getDimSize(1);
    }
    /// Whether a fusion pass gave it a norm, a residual or SwiGLU: its
    /// input is then not what its weight multiplies, or its result not the
    /// product, so the calibration passes refuse it.
    bool isFused() {
      return getNorm() || getResidual() || getSwigluBlock().has_value();
    }
  }];
}

def LLM_RoPEOp : LLM_Op<"rope", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "rotary position embedding (rotate_half convention)";
  let description = [{
    Rotates each `head_dim`-sized head of each row: row `i` is at position
    `start + i`. Pairs are (j, j + head_dim/2), as Hugging Face's
    `rotate_half`, with `inv_freq[j] = theta^(-2j/head_dim)`.

    ```mlir
    %q2 = llm.rope %q, %pos {num_heads = 8 : i64, head_dim = 8 : i64, theta = 10000.0 : f32} : tensor<?x64xf32>
    ```
  }];
  let arguments = (ins LLM_Activation:$input, Index:$start,
                       I64Attr:$num_heads, I64Attr:$head_dim, F32Attr:$theta);
  let results = (outs LLM_Activation:$result);
  let assemblyFormat = "$input `,` $start attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def LLM_AttentionOp : LLM_Op<"attention", [
    DeclareOpInterfaceMethods<MemoryEffectsOpInterface>]> {
  let summary = "causal grouped-query attention over the KV cache";
  let description = [{
    Appends this call's keys and values (rows at positions `start ..
    start+n-1`) to layer `layer` of the cache, then computes causal softmax
    attention of each query row over every cached position up to its own.
    Query head `h` reads key/value head `h / (num_heads / num_kv_heads)`.
    Scores are scaled by `1/sqrt(head_dim)`. Cache layer `layer` holds
    `num_kv_heads` heads of `head_dim`; no other attention op may use it.
    With `rope_theta` (llm-fuse-rope), `query` and `key` are not yet
    rotated: each is rotated as `llm.rope` with that theta at its position
    on its way in (keys enter the cache rotated).

    ```mlir
    %o = llm.attention %q, %k, %v, %cache, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64}
        : tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>,
          !llm.kv_cache<layers = 5, max_seq = 512> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins LLM_Activation:$query, LLM_Activation:$key,
                       LLM_Activation:$value, LLM_KVCacheType:$cache,
                       Index:$start, I64Attr:$layer, I64Attr:$num_heads,
                       I64Attr:$num_kv_heads, I64Attr:$head_dim,
                       OptionalAttr<F32Attr>:$rope_theta);
  let results = (outs LLM_Activation:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $cache `,` $start attr-dict `:`
    type($query) `,` type($key) `,` type($value) `,` type($cache) `->` type($result)
  }];
  let hasVerifier = 1;
}

class LLM_ElementwiseOp<string mnemonic, list<Trait> traits = []>
    : LLM_Op<mnemonic, !listconcat([Pure, SameOperandsAndResultType], traits)>;

def LLM_SiLUOp : LLM_ElementwiseOp<"silu"> {
  let summary = "x · sigmoid(x)";
  let description = [{
    ```mlir
    %y = llm.silu %x : tensor<?x172xf32>
    ```
  }];
  let arguments = (ins LLM_Activation:$input);
  let results = (outs LLM_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def LLM_AddOp : LLM_ElementwiseOp<"add", [Commutative]> {
  let summary = "elementwise sum (the residual connection)";
  let description = [{
    ```mlir
    %y = llm.add %x, %r : tensor<?x64xf32>
    ```
  }];
  let arguments = (ins LLM_Activation:$lhs, LLM_Activation:$rhs);
  let results = (outs LLM_Activation:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def LLM_MulOp : LLM_ElementwiseOp<"mul", [Commutative]> {
  let summary = "elementwise product (the SwiGLU gate)";
  let description = [{
    ```mlir
    %y = llm.mul %g, %u : tensor<?x172xf32>
    ```
  }];
  let arguments = (ins LLM_Activation:$lhs, LLM_Activation:$rhs);
  let results = (outs LLM_Activation:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def LLM_LMHeadOp : LLM_Op<"lm_head", [Pure]> {
  let summary = "the logits projection";
  let description = [{
    `logits = x · Wᵀ` with the `[vocab, hidden]` weight. `tied` records that
    the weight is the token embedding table (tie_word_embeddings), which the
    verifier checks by symbol. `norm(%g : W)` with `norm_eps` (from
    llm-fuse-lm-head): the rows are RMS-normalized with weight `%g` first,
    as `llm.rms_norm` would, in the kernel's input stage; only the rows whose
    logits are kept are normalized.

    ```mlir
    %l = llm.lm_head %h, %emb {tied} : tensor<?x64xf32>, !llm.weight<512x64, f32> -> tensor<?x512xf32>
    %l = llm.lm_head %x, %emb norm(%g : !llm.weight<64, f32>) {norm_eps = 1.0e-05 : f32, tied} : tensor<?x64xf32>, !llm.weight<512x64, f32> -> tensor<?x512xf32>
    ```
  }];
  let arguments = (ins LLM_Activation:$input, LLM_WeightType:$weight,
                       Optional<LLM_WeightType>:$norm,
                       OptionalAttr<F32Attr>:$norm_eps, UnitAttr:$tied);
  let results = (outs LLM_Activation:$result);
  let assemblyFormat = [{
    $input `,` $weight (`norm` `(` $norm^ `:` type($norm) `)`)? attr-dict `:` type($input) `,` type($weight) `->` type($result)
  }];
  let hasVerifier = 1;
}

#endif // LLMC_DIALECTS_LLM_LLMOPS_TD
