// llm-lower-to-llvm on a fused module: fused linears call llmc_k_linear_fused
// (norm weight and eps, residual buffer, SwiGLU block), an attention with
// rope_theta calls llmc_k_attention_rope, the LM head llmc_k_lm_head with
// the final norm's weight, and no elementwise loop is left;
// the CUDA target refuses the CPU kernels' fusions.
// RUN: %python %S/Inputs/tiny_llama.py --stories260k > %t.mlir
// RUN: llmc-opt %t.mlir --llmc-compress --llm-plan-memory="max-tokens=4" --llm-lower-to-llvm | FileCheck %s
// RUN: llmc-opt %t.mlir --llmc-compress --llm-plan-memory="max-tokens=4" --llm-lower-to-llvm | FileCheck %s --check-prefix=NOLOOP
// RUN: llmc-opt %t.mlir --llmc-compress="target=cuda" --llm-plan-memory="max-tokens=4" --llm-lower-to-llvm="target=cuda" | FileCheck %s --check-prefix=CUDA
// RUN: llmc-opt %t.mlir --llmc-compress --llm-plan-memory="max-tokens=4" -o %t.fused.mlir
// RUN: not llmc-opt %t.fused.mlir --llm-lower-to-llvm="target=cuda" 2>&1 | FileCheck %s --check-prefix=REFUSE
// RUN: not llmc-opt %t.mlir --llm-fuse-lm-head --llm-plan-memory="max-tokens=4" --llm-lower-to-llvm="target=cuda" 2>&1 | FileCheck %s --check-prefix=REFUSE-HEAD
// The pipeline option leaves fusions out by name.
// RUN: llmc-opt %t.mlir --llmc-compress="disable-fusion=norm,rope" | FileCheck %s --check-prefix=SOME

// CHECK-DAG: llvm.func @llmc_k_linear_fused(!llvm.ptr, !llvm.ptr, i64, i64, !llvm.ptr, i32, i32, i32, i64, !llvm.ptr, i32, !llvm.ptr, i32, f32, !llvm.ptr, i64, i64, !llvm.ptr, !llvm.ptr)
// CHECK-DAG: llvm.func @llmc_k_attention_rope(!llvm.ptr, i64, !llvm.ptr, !llvm.ptr, !llvm.ptr, i64, i64, i64, i64, i64, f32, !llvm.ptr)
// q/k/v with the input norm: no residual, no SwiGLU.
// CHECK: %[[EPS:.+]] = llvm.mlir.constant(9.99999974E-6 : f32) : f32
// CHECK: %[[NONE:.+]] = llvm.mlir.constant(0 : i64) : i64
// CHECK: llvm.call @llmc_k_linear_fused({{.+}}, %[[EPS]], %{{.+}}, %[[NONE]], %{{.+}}, %{{.+}}, %{{.+}})
// CHECK: llvm.call @llmc_k_attention_rope
// o_proj: the residual stream added in the epilogue.
// CHECK: llvm.call @llmc_k_linear_fused
// gate/up: norm and SwiGLU in blocks of 16 over 344 rows.
// CHECK: %[[ROWS:.+]] = llvm.mlir.constant(344 : i64) : i64
// CHECK: %[[B16:.+]] = llvm.mlir.constant(16 : i64) : i64
// CHECK: llvm.call @llmc_k_linear_fused(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[ROWS]], {{.+}}, %[[B16]], %{{.+}}, %{{.+}}, %{{.+}})
// The final norm is the LM head's input stage: no rms_norm call is left.
// CHECK-NOT: llvm.call @llmc_k_rms_norm
// CHECK: %[[HEPS:.+]] = llvm.mlir.constant(9.99999974E-6 : f32) : f32
// CHECK-NEXT: llvm.call @llmc_k_lm_head({{.+}}, %[[HEPS]], %{{.+}})

// NOLOOP-NOT: scf.for
// NOLOOP-NOT: llvm.call @llmc_k_rope

// CUDA-NOT: llmc_k_linear_fused
// CUDA-NOT: llmc_k_attention_rope
// CUDA: llvm.call @llmc_k_elementwise

// REFUSE: error: llm-lower-to-llvm: a fused norm, residual or SwiGLU has no CUDA kernel (the CUDA target fuses at run time)
// REFUSE-HEAD: error: llm-lower-to-llvm: an LM head with a fused norm has no CUDA kernel
// The CUDA pipeline leaves the final norm out of the head.
// CUDA: llvm.call @llmc_k_rms_norm
// CUDA: llvm.call @llmc_k_lm_head

// SOME: llm.rms_norm
// SOME: llm.rope
// SOME: swiglu_block = 16
// SOME: residual(
