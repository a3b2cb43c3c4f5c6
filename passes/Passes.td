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
    A 2:4 sparse matrix (`s24`, from llm-prune) becomes `s24q8` or `s24q4`:
    its kept values are quantized, one scale per 32 columns, whatever
    `group-size` says.

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

def InterleaveWeightsPass : Pass<"llm-interleave-weights", "mlir::ModuleOp"> {
  let summary = "Lay q8/q4 and f16 matrices out for the CPU kernels, rows interleaved";
  let description = [{
    Every symmetric `q8`/`q4` matrix that only matrix products read
    (`llm.linear`, `llm.lm_head`; not an embedding table, which is read a row
    at a time) becomes `q8x8`/`q4x8`: the same bytes, with each group of 8
    rows stored together, per group of columns the 8 scales and then the 8
    rows' codes of each 32 columns (runtime/kernels/quant.h). The CPU kernels
    then load the scales of 8 rows in one 16-byte load and 4 (q4) or 2 (q8)
    rows' codes in one 512-bit load, and stream the matrix in one pass. Rows
    past the last multiple of 8 stay row by row. An f16 matrix becomes
    `f16x16`: each group of 16 rows stored column by column, so one 32-byte
    load brings one column of 16 rows for a 16-wide FMA (rows past the last
    multiple of 16 stay row-major). This is the last step before
    lowering for `--target cpu`; `llmc compile --no-interleave` skips it.
    Asymmetric q4 stays row by row.

    Before / after:
    ```mlir
    llm.global @w : !llm.weight<64x64, q4<g32>> = ...
    llm.global @w : !llm.weight<64x64, q4x8<g32>> = ...
    ```
  }];
}

def FuseNormPass : Pass<"llm-fuse-norm", "mlir::ModuleOp"> {
  let summary = "Fold each RMSNorm into the input stage of the linears it feeds";
  let description = [{
    An `llm.rms_norm` whose every use is the input of an `llm.linear`
    (after projection fusion: the q/k/v and the gate/up product of a
    LLaMA layer) disappears; each of those linears takes the norm's input
    and carries the norm as `norm(%g : W) {norm_eps = E}`. The CPU kernel
    then normalizes each row and (for q8/q4 weights) quantizes it to int8
    in one pass, with the row in L1, instead of writing the normalized f32
    activations to memory and reading them back. The arithmetic is the
    norm's own, so the result is bit-identical. The final norm before
    `llm.lm_head` is llm-fuse-lm-head's.

    Before / after:
    ```mlir
    %n = llm.rms_norm %h, %g {eps = 1.0e-05 : f32} : tensor<?x64xf32>, !llm.weight<64, f32>
    %q, %k, %v = llm.linear %n, %w : ...
    %q, %k, %v = llm.linear %h, %w norm(%g : !llm.weight<64, f32>) {norm_eps = 1.0e-05 : f32} : ...
    ```
  }];
}

def FuseLMHeadPass : Pass<"llm-fuse-lm-head", "mlir::ModuleOp"> {
  let summary = "Fold the final RMSNorm into the LM head's input stage";
  let description = [{
    The `llm.rms_norm` whose only use is the input of `llm.lm_head`
    disappears; the head takes the norm's input and carries the norm as
    `norm(%g : W) {norm_eps = E}`. The CPU kernel then normalizes only the
    rows whose logits are kept (one in decode; a prefill's other rows are
    never normalized), with the norm's own arithmetic, so the logits are
    bit-identical. With the norm in the head, greedy decoding
    (`llmc_session_prefill_argmax`) finds the largest logit inside the
    kernel, block by block, and never writes the logits.

    Before / after:
    ```mlir
    %n = llm.rms_norm %h, %g {eps = 1.0e-05 : f32} : tensor<?x64xf32>, !llm.weight<64, f32>
    %l = llm.lm_head %n, %emb {tied} : tensor<?x64xf32>, !llm.weight<512x64, f32> -> tensor<?x512xf32>
    %l = llm.lm_head %h, %emb norm(%g : !llm.weight<64, f32>) {norm_eps = 1.0e-05 : f32, tied} : tensor<?x64xf32>, !llm.weight<512x64, f32> -> tensor<?x512xf32>
    ```
  }];
}

def FuseSwiGLUPass : Pass<"llm-fuse-swiglu", "mlir::ModuleOp"> {
  let summary = "Make silu(gate) * up the epilogue of the fused gate/up linear";
  let description = [{
    `llm.mul(llm.silu(%gate), %up)` where `%gate` and `%up` are the two
    results of one (projection-fused) `llm.linear`, each used once, becomes
    that linear with `swiglu_block = B` and one result of the mul's type.
    The weight's rows (and bias) are reordered at compile time into blocks
    of B gate rows followed by the matching B up rows, so one kernel block
    computes both factors of its output columns and writes only
    silu(gate) * up: neither factor goes to memory. Runs before
    `llm-interleave-weights` (B is a multiple of 16, so a block is whole
    groups of the interleaved layouts). The weight must be read only by
    this linear.
  }];
  let options = [
    Option<"block", "block", "int64_t", /*default=*/"16",
           "Gate (and up) rows per block: 16, 32, 48 or 64">,
  ];
}

def FuseResidualPass : Pass<"llm-fuse-residual", "mlir::ModuleOp"> {
  let summary = "Make the residual add the epilogue of the linear before it";
  let description = [{
    `llm.add(%y, %r)` where `%y` is the single result of an `llm.linear`
    used only by this add (o_proj and down_proj in a LLaMA) becomes that
    linear with `residual(%r : T)`: the kernel adds the residual stream as
    it writes each output, so the product is never stored and read back.
    `%r` must be defined before the linear.
  }];
}

def FuseRoPEPass : Pass<"llm-fuse-rope", "mlir::ModuleOp"> {
  let summary = "Fold the RoPE of query and key into the attention's input";
  let description = [{
    An `llm.attention` whose query and key are each the one use of an
    `llm.rope` (same theta and position as the attention, head counts and
    head_dim matching) reads the unrotated projections and carries
    `rope_theta`: the kernel rotates each key row on its way into the KV
    cache and each query row before its scores, so neither rotated tensor
    is written to memory.
  }];
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

def PruneStructuredPass : Pass<"llm-prune-structured", "mlir::ModuleOp"> {
  let summary = "Structured pruning: remove whole KV groups of heads and FFN channels";
  let description = [{
    Removes whole attention KV groups (a key/value head with the query heads
    that read it, under grouped-query attention) and FFN intermediate
    channels from the decoder layers, until `ratio` of all matrix weights
    (embeddings and LM head included) are gone. Each candidate is scored by
    `method`, the scores are standardized per structure type (heads, channels)
    and compared across all layers, so each layer keeps its own head count
    and FFN width; a layer may lose its whole attention or MLP, which then
    disappears from @forward.

    - `flap` (An et al. 2024): the fluctuation (sample variance over the
      calibration tokens) of each input channel of o_proj / down_proj times
      the squared norm of its weight column. Bias compensation: the removed
      channels' mean contribution W[:, removed] · mean(x[removed]) becomes a
      bias of o_proj / down_proj (of the linear before it on the residual
      stream when the whole branch goes).
    - `wanda-sp`: Σ|W[:, j]| · ‖x_j‖₂ over the structure's input channels.
    - `l2`: the squared weights of the whole structure (q/k/v rows and o_proj
      columns; gate/up rows and the down_proj column); no calibration.

    Runs before quantization and projection fusion.

    Before (one KV group of two heads removed):
    ```mlir
    %q = llm.linear %h, %wq : tensor<?x64xf32>, !llm.weight<64x64, f32> -> tensor<?x64xf32>
    %a = llm.attention %qr, %kr, %v, %cache, %pos {layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64} ...
    %o = llm.linear %a, %wo : tensor<?x64xf32>, !llm.weight<64x64, f32> -> tensor<?x64xf32>
    ```
    After (flap):
    ```mlir
    %q = llm.linear %h, %wq : tensor<?x64xf32>, !llm.weight<48x64, f32> -> tensor<?x48xf32>
    %a = llm.attention %qr, %kr, %v, %cache, %pos {layer = 0 : i64, num_heads = 6 : i64, num_kv_heads = 3 : i64, head_dim = 8 : i64} ...
    %o = llm.linear %a, %wo bias %bo : tensor<?x48xf32>, !llm.weight<64x48, f32>, !llm.weight<64, f32> -> tensor<?x64xf32>
    ```
  }];
  let options = [
    Option<"ratio", "ratio", "double", /*default=*/"0.2",
           "Fraction of all matrix weights to remove, in (0, 1)">,
    Option<"method", "method", "std::string", /*default=*/"\"flap\"",
           "flap, wanda-sp (both read llm.calibration) or l2">,
    Option<"progress", "progress", "bool", /*default=*/"false",
           "Print the calibration progress and what was removed">,
  ];
}

def PrunePass : Pass<"llm-prune", "mlir::ModuleOp"> {
  let summary = "Unstructured or N:M pruning of the decoder's linears";
  let description = [{
    Sets weights of every decoder `llm.linear` to zero; the matrices keep
    their shape and storage format. `magnitude` drops the `ratio` smallest
    |W| of each matrix. `wanda` (Sun et al. 2023) scores |W_ij| · ‖x_j‖₂ with
    the input norms from the calibration tokens, layer by layer (each layer
    sees the layers before it pruned), and drops the `ratio` lowest of each
    output row. With `pattern` N:M, each run of M consecutive weights of a
    row keeps its N best (the row length must be a multiple of M) and
    `ratio` is not used. A 2:4 matrix is then stored as `s24` (the kept
    values in f16 and their 2-bit positions: 36 bytes per 32 columns, 56%
    of f16's), which the CPU kernels read directly, unless
    `sparse-format=false`; other patterns stay dense.

    Before:
    ```mlir
    llm.global @model.layers.0.mlp.up_proj.weight : !llm.weight<172x64, f32> = dense<...>
    ```
    After (pattern=2:4): the same type, with two zeros in every four weights.
  }];
  let options = [
    Option<"ratio", "ratio", "double", /*default=*/"0.5",
           "Fraction of each matrix's (or row's) weights set to zero">,
    Option<"method", "method", "std::string", /*default=*/"\"magnitude\"",
           "magnitude or wanda (reads llm.calibration)">,
    Option<"pattern", "pattern", "std::string", /*default=*/"\"unstructured\"",
           "unstructured, or N:M (keep N of every M consecutive weights)">,
    Option<"sparseFormat", "sparse-format", "bool", /*default=*/"true",
           "With pattern 2:4, store the matrices in the s24 format (kept "
           "values in f16 and their positions)">,
    Option<"progress", "progress", "bool", /*default=*/"false",
           "Print the calibration progress and the sparsity reached">,
  ];
}

def LowRankPass : Pass<"llm-lowrank", "mlir::ModuleOp"> {
  let summary = "Replace decoder linears by a low-rank pair of linears (truncated SVD)";
  let description = [{
    Factorizes each float decoder weight W [out, in] as U·V with U [out, r]
    and V [r, in] (Eigen's BDCSVD, balanced: √Σ on each side) and replaces
    `llm.linear %x, W` by `llm.linear (llm.linear %x, V), U` (the bias stays
    on U), only where r·(out + in) < out·in. With calibration tokens
    (`llm.calibration`) the SVD is of W·L, L the Cholesky factor of the
    damped input covariance E[xxᵀ], and V is multiplied back by L⁻¹
    (SVD-LLM's whitening): truncation then minimizes the output error
    ‖X·Wᵀ − X·W'ᵀ‖ and each dropped σ² is exactly the error it adds.

    `spec`: `rank=R` (one rank for every matrix), `energy=E` (each matrix
    the smallest rank keeping E of its σ²), or `auto=F` (needs calibration:
    all matrices together keep F of their dense weights; starting from rank
    1 each, the step with the most relative output error removed per weight,
    σ²_k / Σσ² / (out + in), is taken while the budget lasts, a matrix past
    its largest useful rank going back to dense).

    Before:
    ```mlir
    %y = llm.linear %x, %w : tensor<?x64xf32>, !llm.weight<172x64, f32> -> tensor<?x172xf32>
    ```
    After (rank=16):
    ```mlir
    %t = llm.linear %x, %v : tensor<?x64xf32>, !llm.weight<16x64, f32> -> tensor<?x16xf32>
    %y = llm.linear %t, %u : tensor<?x16xf32>, !llm.weight<172x16, f32> -> tensor<?x172xf32>
    ```
  }];
  let options = [
    Option<"spec", "spec", "std::string", /*default=*/"\"energy=0.9\"",
           "rank=R, energy=E or auto=FRACTION">,
    Option<"damp", "damp", "double", /*default=*/"0.01",
           "Added to the covariance's diagonal, as a fraction of its mean">,
    Option<"progress", "progress", "bool", /*default=*/"false",
           "Print the calibration progress and the ranks chosen">,
  ];
}

#endif // LLMC_PASSES_PASSES_TD
