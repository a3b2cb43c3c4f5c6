// llm-fuse-swiglu: silu(gate) * up becomes the epilogue of the fused gate/up
// linear, whose rows are reordered into blocks of gate rows then up rows.
// RUN: %python %S/Inputs/tiny_llama.py --stories260k > %t.mlir
// RUN: llmc-opt %t.mlir --llm-fuse-projections -o %t.proj.mlir
// RUN: llmc-opt %t.proj.mlir --llm-fuse-swiglu -o %t.swiglu.mlir
// RUN: FileCheck %s < %t.swiglu.mlir
// RUN: not grep "llm.silu\|llm.mul" %t.swiglu.mlir
// FFN 172 in blocks of 16: ten whole blocks and one of 12 gate + 12 up rows.
// RUN: %python %e2e/swiglu_rows.py %t.proj.mlir %t.swiglu.mlir model.layers.0.mlp.gate_up_proj.weight 172 16
// RUN: llmc-opt %t.proj.mlir --llm-fuse-swiglu="block=48" -o %t.b48.mlir
// RUN: %python %e2e/swiglu_rows.py %t.proj.mlir %t.b48.mlir model.layers.0.mlp.gate_up_proj.weight 172 48
// Quantized rows move whole (q4: 36 bytes a row of 64), and so does a bias.
// RUN: llmc-opt %t.mlir --llm-quantize-weights="format=q4" --llm-fuse-projections -o %t.q4.mlir
// RUN: llmc-opt %t.q4.mlir --llm-fuse-swiglu -o %t.q4s.mlir
// RUN: %python %e2e/swiglu_rows.py %t.q4.mlir %t.q4s.mlir model.layers.0.mlp.gate_up_proj.weight 172 16
// RUN: %python %S/Inputs/tiny_llama.py --mlp-bias | llmc-opt --llm-fuse-projections -o %t.bias.mlir
// RUN: llmc-opt %t.bias.mlir --llm-fuse-swiglu -o %t.biass.mlir
// RUN: %python %e2e/swiglu_rows.py %t.bias.mlir %t.biass.mlir model.layers.0.mlp.gate_up_proj.bias 96 16
// RUN: FileCheck %s --check-prefix=BIAS < %t.biass.mlir
// Unfused gate and up (two linears) are left alone; so is a layout the
// pass cannot reorder, and a block the kernels do not take.
// RUN: llmc-opt %t.mlir --llm-fuse-swiglu | FileCheck %s --check-prefix=SEPARATE
// RUN: not llmc-opt %t.q4.mlir --llm-interleave-weights --llm-fuse-swiglu 2>&1 | FileCheck %s --check-prefix=X8
// RUN: not llmc-opt %t.proj.mlir --llm-fuse-swiglu="block=24" 2>&1 | FileCheck %s --check-prefix=BLOCK
// The compiled program computes what the unfused one does (f32 weights:
// the same products, bit for bit up to the SiLU's exp), and so does the
// reference evaluator.
// RUN: llmc compile %t.mlir -o %t.fused --quiet --disable-fusion=residual,rope,norm
// RUN: llmc compile %t.mlir -o %t.plain --quiet --no-fuse
// RUN: %t.fused --prompt-ids 1,5,9,3,12,7,100,200 --kv-cache f32 --logits > %t.fused.txt
// RUN: %t.plain --prompt-ids 1,5,9,3,12,7,100,200 --kv-cache f32 --logits > %t.plain.txt
// RUN: %python %e2e/compare_logits.py %t.fused.txt %t.plain.txt 1e-5
// RUN: llmc-run --weights %t.fused --prompt-ids 1,5,9,3,12,7,100,200 --kv-cache f32 --logits > %t.eval.txt
// RUN: %python %e2e/compare_logits.py %t.fused.txt %t.eval.txt 1e-5

// CHECK: llm.global @model.layers.0.mlp.gate_up_proj.weight : !llm.weight<344x64, f32>
// CHECK: %{{.+}} = llm.linear %{{.+}}, %{{.+}} {swiglu_block = 16 : i64} : tensor<?x64xf32>, <344x64, f32> -> tensor<?x172xf32>
// CHECK-NEXT: llm.weight @model.layers.0.mlp.down_proj.weight

// BIAS: llm.linear %{{.+}}, %{{.+}} bias %{{.+}} {swiglu_block = 16 : i64} : tensor<?x64xf32>, <192x64, f32>, !llm.weight<192, f32> -> tensor<?x96xf32>

// SEPARATE: llm.silu
// SEPARATE: llm.mul

// X8: error: llm-fuse-swiglu: @model.layers.0.mlp.gate_up_proj.weight is stored with rows interleaved; run the pass before llm-interleave-weights
// BLOCK: error: llm-fuse-swiglu: block must be 16, 32, 48 or 64
