// llm-fuse-residual: the residual add after o_proj and down_proj becomes the
// epilogue of that linear.
// RUN: %python %S/Inputs/tiny_llama.py --stories260k > %t.mlir
// RUN: llmc-opt %t.mlir --llm-fuse-residual -o %t.fused.mlir
// RUN: FileCheck %s < %t.fused.mlir
// RUN: not grep "llm.add" %t.fused.mlir
// RUN: grep -c "residual(" %t.fused.mlir | FileCheck %s --check-prefix=TWO
// A product with another reader, or a residual defined after the product,
// stays an add.
// RUN: llmc-opt %s --llm-fuse-residual | FileCheck %s --check-prefix=KEEP
// Biased products keep the bias (added before the residual), and the
// compiled program matches the unfused one.
// RUN: %python %S/Inputs/tiny_llama.py --bias > %t.bias.mlir
// RUN: llmc compile %t.bias.mlir -o %t.fused --quiet --disable-fusion=swiglu,rope,norm
// RUN: llmc compile %t.bias.mlir -o %t.plain --quiet --no-fuse
// RUN: %t.fused --prompt-ids 1,5,9,3,12,7 --kv-cache f32 --logits > %t.fused.txt
// RUN: %t.plain --prompt-ids 1,5,9,3,12,7 --kv-cache f32 --logits > %t.plain.txt
// RUN: %python %e2e/compare_logits.py %t.fused.txt %t.plain.txt 1e-5
// RUN: llmc-run --weights %t.fused --prompt-ids 1,5,9,3,12,7 --kv-cache f32 --logits > %t.eval.txt
// RUN: %python %e2e/compare_logits.py %t.fused.txt %t.eval.txt 1e-5

// CHECK: %[[X0:.+]] = llm.embedding
// CHECK: %[[X1:.+]] = llm.linear %{{.+}}, %{{.+}} residual(%[[X0]] : tensor<?x64xf32>) : tensor<?x64xf32>, <64x64, f32> -> tensor<?x64xf32>
// CHECK: llm.rms_norm %[[X1]]
// CHECK: %[[X2:.+]] = llm.linear %{{.+}}, %{{.+}} residual(%[[X1]] : tensor<?x64xf32>) : tensor<?x172xf32>, <64x172, f32> -> tensor<?x64xf32>
// CHECK: llm.rms_norm %[[X2]]
// TWO: {{^}}2{{$}}

// KEEP-LABEL: func.func @shared
// KEEP: llm.add
// KEEP-LABEL: func.func @later
// KEEP: llm.add
func.func @shared(%x: tensor<?x16xf32>, %w: !llm.weight<16x16, f32>) -> (tensor<?x16xf32>, tensor<?x16xf32>) {
  %y = llm.linear %x, %w : tensor<?x16xf32>, !llm.weight<16x16, f32> -> tensor<?x16xf32>
  %s = llm.add %x, %y : tensor<?x16xf32>
  return %s, %y : tensor<?x16xf32>, tensor<?x16xf32>
}
func.func @later(%x: tensor<?x16xf32>, %w: !llm.weight<16x16, f32>) -> tensor<?x16xf32> {
  %y = llm.linear %x, %w : tensor<?x16xf32>, !llm.weight<16x16, f32> -> tensor<?x16xf32>
  %r = llm.silu %x : tensor<?x16xf32>
  %s = llm.add %y, %r : tensor<?x16xf32>
  return %s : tensor<?x16xf32>
}
