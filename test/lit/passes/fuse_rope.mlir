// llm-fuse-rope: the RoPE of query and key moves into the attention, which
// rotates them on the way in (keys enter the cache rotated).
// RUN: %python %S/Inputs/tiny_llama.py --stories260k > %t.mlir
// RUN: llmc-opt %t.mlir --llm-fuse-rope -o %t.fused.mlir
// RUN: FileCheck %s < %t.fused.mlir
// RUN: not grep "llm.rope" %t.fused.mlir
// A rotated query that something else also reads stays a rope.
// RUN: llmc-opt %s --llm-fuse-rope | FileCheck %s --check-prefix=KEEP
// Every layer shape (per-layer head counts), compiled and in the evaluator,
// with f32 and f16 caches.
// RUN: %python %S/Inputs/tiny_llama.py --hetero > %t.h.mlir
// RUN: llmc compile %t.h.mlir -o %t.fused --quiet --disable-fusion=swiglu,residual,norm
// RUN: llmc compile %t.h.mlir -o %t.plain --quiet --no-fuse
// RUN: %t.fused --prompt-ids 1,5,9,3,12,7 --kv-cache f32 --logits > %t.fused.txt
// RUN: %t.plain --prompt-ids 1,5,9,3,12,7 --kv-cache f32 --logits > %t.plain.txt
// RUN: %python %e2e/compare_logits.py %t.fused.txt %t.plain.txt 1e-5
// RUN: %t.fused --prompt-ids 1,5,9,3,12,7 --logits > %t.fused16.txt
// RUN: %t.plain --prompt-ids 1,5,9,3,12,7 --logits > %t.plain16.txt
// RUN: %python %e2e/compare_logits.py %t.fused16.txt %t.plain16.txt 1e-5
// RUN: llmc-run --weights %t.fused --prompt-ids 1,5,9,3,12,7 --kv-cache f32 --logits > %t.eval.txt
// RUN: %python %e2e/compare_logits.py %t.fused.txt %t.eval.txt 1e-5

// CHECK: %[[QKV:.+]] = llm.linear
// CHECK: llm.attention %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} {head_dim = 8 : i64, layer = 0 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, rope_theta = 1.000000e+04 : f32}

// KEEP: llm.rope
// KEEP: llm.rope
// KEEP: llm.attention
// KEEP-NOT: rope_theta
func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>,
             %c: !llm.kv_cache<layers = 1, max_seq = 32>, %p: index) -> (tensor<?x16xf32>, tensor<?x16xf32>) {
  %qr = llm.rope %q, %p {num_heads = 4 : i64, head_dim = 4 : i64, theta = 1.0e+04 : f32} : tensor<?x16xf32>
  %kr = llm.rope %k, %p {num_heads = 2 : i64, head_dim = 4 : i64, theta = 1.0e+04 : f32} : tensor<?x8xf32>
  %a = llm.attention %qr, %kr, %v, %c, %p {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64}
      : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, !llm.kv_cache<layers = 1, max_seq = 32> -> tensor<?x16xf32>
  return %a, %qr : tensor<?x16xf32>, tensor<?x16xf32>
}
