// Declarations of llmc's compression and fusion passes on the `llm` dialect.
#ifndef LLMC_PASSES_PASSES_TD
#define LLMC_PASSES_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertWeightFormatPass : Pass<"llm-convert-weight-format", "mlir::ModuleOp"> {
  let summary = "Store floating-point weights in another float format (f16, bf16, f32)";
  let description = [{
    Rewrites every `llm.global` in a floating format to `format`, converting
    its data (round to nearest even) and updating the type of every
    `llm.weight` that refers to it. Norm weights (rank 1) stay as they are
    unless `include-norms` is set: they are tiny and sensitive.

    Before (format=f16):
    ```mlir
    llm.global @w : !llm.weight<64x64, f32> = dense_resource<w> : tensor<64x64xf32>
    %0 = llm.weight @w : !llm.weight<64x64, f32>
    ```
    After:
    ```mlir
    llm.global @w : !llm.weight<64x64, f16> = dense_resource<w_f16> : tensor<64x64xf16>
    %0 = llm.weight @w : !llm.weight<64x64, f16>
    ```
  }];
  let options = [
    Option<"format", "format", "std::string", /*default=*/"\"f16\"",
           "Target format: f16, bf16 or f32">,
    Option<"includeNorms", "include-norms", "bool", /*default=*/"false",
           "Also convert rank-1 (norm) weights">,
  ];
}

defvar QuantOptions = [
  Option<"format", "format", "std::string", /*default=*/"\"q4\"",
         "Target format: q8, q4 or q4a (q4 with a zero point)">,
  Option<"groupSize", "group-size", "int64_t", /*default=*/"32",
         "Elements per quantization group (a multiple of 32)">,
  ListOption<"keep", "keep", "std::string",
             "PATTERN=FORMAT rules: weights whose name matches the glob get "
             "FORMAT (f32, f16, bf16, q8, q4, q4a) instead">,
];

def QuantizeWeightsPass : Pass<"llm-quantize-weights", "mlir::ModuleOp"> {
  let summary = "Round-to-nearest quantization of every weight matrix";
  let description = [{
    Stores each rank-2 `llm.global` that is still in a float format in
    `format`, by round-to-nearest per group of `group-size` elements along the
    row (block layouts in runtime/kernels/quant.h). A `keep` rule whose glob
    matches the global's name picks another format (mixed precision). Norms
    (rank 1) and weights already quantized by GPTQ or AWQ are left alone.

    Before (format=q4 group-size=32):
    ```mlir
    llm.global @w : !llm.weight<64x64, f32> = dense_resource<w> : tensor<64x64xf32>
    ```
    After:
    ```mlir
    llm.global @w : !llm.weight<64x64, q4<g32>> = dense_resource<w.q4g32> : tensor<2304xi8>
    ```
  }];
  let options = QuantOptions;
}

def GPTQPass : Pass<"llm-gptq", "mlir::ModuleOp"> {
  let summary = "GPTQ quantization of the decoder's linear layers";
  let description = [{
    GPTQ (Frantar et al. 2022). Runs the calibration tokens of the
    `llm.calibration` module attribute through the model layer by layer with
    the runtime's kernels; for each layer, accumulates the Hessian
    H = 2/N · XᵀX of each linear's input (layers before it already
    quantized), adds `damp` × mean(diag H) to its diagonal, and quantizes the
    weight column by column, spreading each column's rounding error over the
    remaining columns through the Cholesky factor of H⁻¹ (Eigen's LLT), in
    blocks of `block-size` columns with lazy updates. `act-order` visits
    columns by decreasing diag(H), with group parameters fixed beforehand.
    Embeddings and the LM head are not touched (run llm-quantize-weights
    after it); weights matching a `keep` rule are skipped.

    Before:
    ```mlir
    llm.global @model.layers.0.mlp.down_proj.weight : !llm.weight<64x172, f32> = ...
    ```
    After (format=q4):
    ```mlir
    llm.global @model.layers.0.mlp.down_proj.weight : !llm.weight<64x172, q4<g32>> = ...
    ```
  }];
  let options = !listconcat(QuantOptions, [
    Option<"damp", "damp", "double", /*default=*/"0.01",
           "Diagonal dampening, as a fraction of mean(diag H)">,
    Option<"blockSize", "block-size", "int64_t", /*default=*/"128",
           "Columns per lazy-update block">,
    Option<"actOrder", "act-order", "bool", /*default=*/"false",
           "Quantize columns in order of decreasing Hessian diagonal">,
    Option<"progress", "progress", "bool", /*default=*/"false",
           "Print a line per layer with the time left">,
  ]);
}

def AWQPass : Pass<"llm-awq", "mlir::ModuleOp"> {
  let summary = "Activation-aware weight quantization of the decoder's linear layers";
  let description = [{
    AWQ (Lin et al. 2023). For each group of linears that share an input
    (q/k/v, gate/up, down, and o when there is no grouped-query attention),
    searches per-input-channel scales s = mean|x|^α over a grid of α in
    [0, 1) on the calibration activations (`llm.calibration`), minimizing
    ‖X·(Q(W·s)/s)ᵀ − X·Wᵀ‖², then folds 1/s into the op before (the RMSNorm
    weight, up_proj's rows, or v_proj's rows). With `clip`, each row group
    of W·s (except q and k) is clamped to the range, between 50% and 100%
    of its largest magnitude, that quantizes with the least output error.
    Then W·s is quantized by round-to-nearest.

    Before:
    ```mlir
    llm.global @model.layers.0.input_layernorm.weight : !llm.weight<64, f32> = ...
    llm.global @model.layers.0.self_attn.q_proj.weight : !llm.weight<64x64, f32> = ...
    ```
    After (format=q4): the norm weight divided by s, q_proj scaled and
    ```mlir
    llm.global @model.layers.0.self_attn.q_proj.weight : !llm.weight<64x64, q4<g32>> = ...
    ```
  }];
  let options = !listconcat(QuantOptions, [
    Option<"grid", "grid", "int64_t", /*default=*/"20",
           "Number of α values tried">,
    Option<"clip", "clip", "bool", /*default=*/"true",
           "Also search each group's clipping range (not for q and k)">,
    Option<"clipTokens", "clip-tokens", "int64_t", /*default=*/"128",
           "Calibration tokens the clipping search evaluates">,
    Option<"maxTokens", "max-tokens", "int64_t", /*default=*/"512",
           "Calibration tokens the scale search evaluates">,
    Option<"progress", "progress", "bool", /*default=*/"false",
           "Print a line per layer with the time left">,
  ]);
}

def FuseProjectionsPass : Pass<"llm-fuse-projections", "mlir::ModuleOp"> {
  let summary = "Fuse the linears that read one activation (q/k/v, gate/up) into one";
  let description = [{
    Every group of `llm.linear` ops of @forward that read the same activation
    becomes one `llm.linear` over the row-wise concatenation of their weights
    (and of their biases, when all have one), with one result per former
    linear: each consumer reads its own result, and the kernel writes each
    part straight into it, so nothing is copied at run time. In a LLaMA this
    fuses q/k/v and gate/up. Row-wise storage formats concatenate by bytes
    (f32, f16, bf16, and q8/q4 rows of whole groups), so the pass runs before
    or after quantization; weights of different formats (mixed precision) are
    left apart. Globals that only the fused linears read are removed.

    Before:
    ```mlir
    %q = llm.linear %h, %wq : tensor<?x64xf32>, !llm.weight<64x64, f32> -> tensor<?x64xf32>
    %k = llm.linear %h, %wk : tensor<?x64xf32>, !llm.weight<32x64, f32> -> tensor<?x32xf32>
    %v = llm.linear %h, %wv : tensor<?x64xf32>, !llm.weight<32x64, f32> -> tensor<?x32xf32>
    ```
    After:
    ```mlir
    %w = llm.weight @model.layers.0.self_attn.qkv_proj.weight : !llm.weight<128x64, f32>
    %q, %k, %v = llm.linear %h, %w : tensor<?x64xf32>, !llm.weight<128x64, f32>
        -> tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>
    ```
  }];
}

#endif // LLMC_PASSES_PASSES_TD
