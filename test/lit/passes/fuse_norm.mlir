// llm-fuse-norm: an RMSNorm whose every use is a linear's input becomes the
// input stage of those linears; the final norm (read by lm_head) stays.
// RUN: %python %S/Inputs/tiny_llama.py --stories260k > %t.mlir
// RUN: llmc-opt %t.mlir --llm-fuse-projections --llm-fuse-norm -o %t.fused.mlir
// RUN: FileCheck %s < %t.fused.mlir
// RUN: grep -c "llm.rms_norm" %t.fused.mlir | FileCheck %s --check-prefix=ONE
// Unfused q/k/v: each of the three linears takes the norm.
// RUN: llmc-opt %t.mlir --llm-fuse-norm | FileCheck %s --check-prefix=SEPARATE
// RUN: llmc-opt %t.mlir --llm-fuse-norm | grep -c "norm(" | FileCheck %s --check-prefix=FIVE
// A norm with another reader stays whole.
// RUN: llmc-opt %s --llm-fuse-norm | FileCheck %s --check-prefix=KEEP
// The same logits as the unfused program (f32 and q8 weights), compiled and
// in the reference evaluator.
// RUN: llmc compile %t.mlir -o %t.fused --quiet --disable-fusion=swiglu,residual,rope
// RUN: llmc compile %t.mlir -o %t.plain --quiet --no-fuse
// RUN: %t.fused --prompt-ids 1,5,9,3,12,7,100,200 --kv-cache f32 --logits > %t.fused.txt
// RUN: %t.plain --prompt-ids 1,5,9,3,12,7,100,200 --kv-cache f32 --logits > %t.plain.txt
// RUN: %python %e2e/compare_logits.py %t.fused.txt %t.plain.txt 1e-5
// RUN: llmc-run --weights %t.fused --prompt-ids 1,5,9,3,12,7,100,200 --kv-cache f32 --logits > %t.eval.txt
// RUN: %python %e2e/compare_logits.py %t.fused.txt %t.eval.txt 1e-5
// RUN: llmc compile %t.mlir -o %t.q8 --quiet --q8 --disable-fusion=swiglu,residual,rope
// RUN: llmc compile %t.mlir -o %t.q8plain --quiet --q8 --disable-fusion=norm
// RUN: %t.q8 --prompt-ids 1,5,9,3,12,7,100,200 --kv-cache f32 --logits > %t.q8.txt
// RUN: %t.q8plain --prompt-ids 1,5,9,3,12,7,100,200 --kv-cache f32 --logits > %t.q8plain.txt
// RUN: %python %e2e/compare_logits.py %t.q8.txt %t.q8plain.txt 1e-4

// CHECK: %[[QKV:.+]]:3 = llm.linear %[[X:.+]], %{{.+}} norm(%{{.+}} : !llm.weight<64, f32>) {norm_eps = 9.99999974E-6 : f32} : tensor<?x64xf32>, <128x64, f32>
// CHECK: %[[GU:.+]]:2 = llm.linear %{{.+}}, %{{.+}} norm(%{{.+}} : !llm.weight<64, f32>) {norm_eps = 9.99999974E-6 : f32} : tensor<?x64xf32>, <344x64, f32>
// CHECK: %[[F:.+]] = llm.rms_norm
// CHECK-NEXT: llm.lm_head %[[F]]
// ONE: {{^}}1{{$}}

// SEPARATE: %[[H:.+]] = llm.embedding
// SEPARATE: llm.linear %[[H]], %{{.+}} norm(
// SEPARATE: llm.linear %[[H]], %{{.+}} norm(
// SEPARATE: llm.linear %[[H]], %{{.+}} norm(
// FIVE: {{^}}5{{$}}

// KEEP: %[[N:.+]] = llm.rms_norm
// KEEP: llm.linear %[[N]], %{{.+}} :
// KEEP: llm.add %[[N]]
func.func @f(%x: tensor<?x16xf32>, %g: !llm.weight<16, f32>, %w: !llm.weight<16x16, f32>) -> tensor<?x16xf32> {
  %n = llm.rms_norm %x, %g {eps = 1.0e-05 : f32} : tensor<?x16xf32>, !llm.weight<16, f32>
  %y = llm.linear %n, %w : tensor<?x16xf32>, !llm.weight<16x16, f32> -> tensor<?x16xf32>
  %s = llm.add %n, %y : tensor<?x16xf32>
  return %s : tensor<?x16xf32>
}

// Projection fusion leaves norm-fused linears alone, and a calibration
// pass refuses them (the pipeline runs both before the kernel fusions).
// RUN: llmc-opt %t.mlir --llm-fuse-norm --llm-fuse-projections | FileCheck %s --check-prefix=PROJ
// RUN: not llmc-opt %t.mlir --llm-fuse-norm --llm-lowrank="spec=rank=4" 2>&1 | FileCheck %s --check-prefix=CALIB
// PROJ-NOT: qkv_proj
// PROJ: llm.linear %{{.+}}, %{{.+}} norm(
// CALIB: error: llm-lowrank: a linear carries a fused norm, residual or SwiGLU, whose input or result is not its matrix's: run the llm-fuse-* passes after the calibration passes
