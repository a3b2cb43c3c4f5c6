// llm-fuse-lm-head: the final RMSNorm, read by the LM head alone, becomes the
// head's input stage; a norm with another reader stays. Compiled, the fused
// head gives the unfused program's logits, and greedy decoding (whose head
// keeps the argmax without writing logits) the same tokens, in the compiled
// program and in the reference evaluator.
// RUN: %python %S/Inputs/tiny_llama.py --stories260k > %t.mlir
// RUN: llmc-opt %t.mlir --llm-fuse-lm-head -o %t.fused.mlir
// RUN: FileCheck %s < %t.fused.mlir
// RUN: grep -c "llm.rms_norm" %t.mlir | FileCheck %s --check-prefix=BEFORE
// RUN: grep -c "llm.rms_norm" %t.fused.mlir | FileCheck %s --check-prefix=AFTER
// RUN: llmc-opt %s --llm-fuse-lm-head | FileCheck %s --check-prefix=KEEP
// RUN: llmc compile %t.mlir -o %t.fused --quiet
// RUN: llmc compile %t.mlir -o %t.plain --quiet --disable-fusion=lm-head
// RUN: %t.fused --prompt-ids 1,5,9,3,12,7,100,200 --kv-cache f32 --logits > %t.fused.txt
// RUN: %t.plain --prompt-ids 1,5,9,3,12,7,100,200 --kv-cache f32 --logits > %t.plain.txt
// RUN: %python %e2e/compare_logits.py %t.fused.txt %t.plain.txt 1e-5
// RUN: %t.fused --prompt-ids 1,5,9 -n 24 --ids > %t.fused.ids
// RUN: %t.plain --prompt-ids 1,5,9 -n 24 --ids > %t.plain.ids
// RUN: %t.fused --prompt-ids 1,5,9 -n 24 --ids --threads 1 > %t.fused1.ids
// RUN: llmc-run --weights %t.fused --prompt-ids 1,5,9 -n 24 --ids > %t.eval.ids
// RUN: cmp %t.fused.ids %t.plain.ids
// RUN: cmp %t.fused.ids %t.fused1.ids
// RUN: cmp %t.fused.ids %t.eval.ids

// CHECK: llm.linear %{{.+}}, %{{.+}} : tensor<?x172xf32>
// CHECK-NEXT: %[[X:.+]] = llm.add
// CHECK-NEXT: %[[G:.+]] = llm.weight @model.norm.weight
// CHECK-NEXT: llm.lm_head %[[X]], %{{.+}} norm(%[[G]] : !llm.weight<64, f32>) {norm_eps = 9.99999974E-6 : f32, tied} : tensor<?x64xf32>, <512x64, f32> -> tensor<?x512xf32>
// BEFORE: {{^}}3{{$}}
// AFTER: {{^}}2{{$}}

// KEEP: %[[N:.+]] = llm.rms_norm
// KEEP: llm.lm_head %[[N]], %{{.+}} :
// KEEP: llm.add %[[N]]
func.func @f(%x: tensor<?x16xf32>, %g: !llm.weight<16, f32>, %w: !llm.weight<8x16, f32>) -> (tensor<?x8xf32>, tensor<?x16xf32>) {
  %n = llm.rms_norm %x, %g {eps = 1.0e-05 : f32} : tensor<?x16xf32>, !llm.weight<16, f32>
  %l = llm.lm_head %n, %w : tensor<?x16xf32>, !llm.weight<8x16, f32> -> tensor<?x8xf32>
  %s = llm.add %n, %n : tensor<?x16xf32>
  return %l, %s : tensor<?x8xf32>, tensor<?x16xf32>
}
