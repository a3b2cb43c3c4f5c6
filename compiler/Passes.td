// Declarations of the code-generation passes: memory planning and lowering to LLVM.
#ifndef LLMC_COMPILER_PASSES_TD
#define LLMC_COMPILER_PASSES_TD

include "mlir/Pass/PassBase.td"

def PlanMemoryPass : Pass<"llm-plan-memory", "mlir::ModuleOp"> {
  let summary = "Assign every activation a fixed offset in one arena";
  let description = [{
    Plans the activation memory of `@forward` for calls of up to `max-tokens`
    tokens: each tensor result gets a byte offset (`llm.offset`) in a single
    arena, reusing the space of values whose last use has passed (first fit
    over the ops' linear order). The returned logits are written to the
    caller's buffer and get no offset. The function records
    `llm.arena_bytes` and `llm.max_tokens`.

    ```mlir
    %1 = llm.embedding %arg0, %0 {llm.offset = 0 : i64} : ...
    %3 = llm.rms_norm %1, %2 {eps = ..., llm.offset = 131072 : i64} : ...
    ```
  }];
  let options = [
    Option<"maxTokens", "max-tokens", "int64_t", /*default=*/"512",
           "Most tokens one forward call processes">,
  ];
}

def LowerToLLVMPass : Pass<"llm-lower-to-llvm", "mlir::ModuleOp"> {
  let summary = "Lower a planned `llm` module to the LLVM dialect";
  let description = [{
    Turns `@forward` into `llmc_forward(exec, weights, arena, tokens, n,
    start, logits_rows, logits)`: weights are loaded from the table by their
    global's index, activations live at their planned arena offsets, the
    heavy ops become calls of the runtime's `llmc_k_*` kernels, and the
    elementwise ops (silu, mul, add) become generated loops (`target=cpu`)
    or `llmc_k_elementwise` calls (`target=cuda`). A CPU loop works on
    `vector<Wxf32>` values (W = `vector-width`, the target's float lanes:
    llmc sets it from `--target-cpu`) with a scalar loop for the rest, and
    its exp is MLIR's polynomial approximation, so the vector loop has no
    libm call to scalarize. The module also
    gets `llmc_compiled_program`, the descriptor the runtime binds. Globals
    are removed: their data go to the artifact.
  }];
  let dependentDialects = [
    "mlir::LLVM::LLVMDialect", "mlir::scf::SCFDialect",
    "mlir::arith::ArithDialect", "mlir::math::MathDialect",
    "mlir::vector::VectorDialect",
  ];
  let options = [
    Option<"fingerprint", "fingerprint", "uint64_t", /*default=*/"0",
           "Tensor-table fingerprint recorded in the program descriptor "
           "(0: the module's own, as the artifact builder computes it)">,
    Option<"defaultWeights", "default-weights", "std::string", /*default=*/"\"\"",
           "Weights file the executable opens when none is appended">,
    Option<"target", "target", "std::string", /*default=*/"\"cpu\"",
           "cpu: elementwise ops become generated loops over host memory; "
           "cuda: they become llmc_k_elementwise calls (a SiLU whose one use "
           "is a multiply fuses into SWIGLU), so the runtime may keep every "
           "activation on a GPU">,
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"4",
           "f32 lanes of the generated elementwise loops (4: SSE, 8: AVX2, "
           "16: AVX-512)">,
  ];
}

#endif // LLMC_COMPILER_PASSES_TD
