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

#endif // LLMC_PASSES_PASSES_TD
