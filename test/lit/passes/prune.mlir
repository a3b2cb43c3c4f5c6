// llm-prune: magnitude and Wanda, unstructured and N:M, on the three-layer
// fixture. Shapes and formats stay; the progress line counts the zeros of
// the decoder matrices (85,504 weights).
// RUN: %python %S/Inputs/tiny_llama.py --hetero > %t.mlir
// RUN: llmc-opt %t.mlir --llm-prune="ratio=0.5 progress=true" -o %t.mag.mlir 2>&1 | FileCheck %s --check-prefix=MAG
// RUN: llmc-opt %t.mlir --llm-prune="ratio=0.5 method=wanda progress=true" -o %t.wanda.mlir 2>&1 | FileCheck %s --check-prefix=WANDA
// RUN: llmc-opt %t.mlir --llm-prune="pattern=2:4 method=wanda progress=true" -o %t.24.mlir 2>&1 | FileCheck %s --check-prefix=NM
// RUN: llmc-opt %t.mlir --llm-prune="pattern=1:4 progress=true" -o /dev/null 2>&1 | FileCheck %s --check-prefix=NM14
// RUN: FileCheck %s --check-prefix=SHAPES < %t.24.mlir
// Wanda's input norms change which weights go: the two results differ.
// RUN: not diff %t.mag.mlir %t.wanda.mlir
// The pattern really holds: every run of 4 weights of every row keeps 2.
// The s24 module compiles and runs as the evaluator does.
// RUN: llmc compile %t.24.mlir -o %t.24 --quiet
// RUN: llmc inspect %t.24 --verify | FileCheck %s --check-prefix=INSPECT
// RUN: %t.24 --prompt-ids 1,5,9,3,12,7 --logits > %t.24.txt
// RUN: llmc-run --weights %t.24 --prompt-ids 1,5,9,3,12,7 --logits > %t.24.eval.txt
// RUN: %python %e2e/compare_logits.py %t.24.txt %t.24.eval.txt 1e-5
// MAG: llm-prune: magnitude unstructured: 42752 of 85504 decoder weights are zero (50.0%)
// WANDA: llm-prune: block 3/3
// WANDA: llm-prune: wanda unstructured: 42752 of 85504 decoder weights are zero (50.0%)
// NM: llm-prune: wanda 2:4: 42752 of 85504 decoder weights are zero (50.0%), 21 matrices stored as s24 (2:4 sparse)
// NM14: llm-prune: magnitude 1:4: 64128 of 85504 decoder weights are zero (75.0%)
// 2:4 matrices are stored as s24: 36 bytes per 32 columns (40 columns pad
// to 64: 72 bytes a row, 64 rows).
// SHAPES: llm.global @model.layers.1.mlp.down_proj.weight : !llm.weight<64x40, s24> = dense_resource<{{.+}}> : tensor<4608xi8>
// SHAPES: llm.weight @model.layers.0.self_attn.q_proj.weight : <64x64, s24>
// RUN: llmc-opt %t.mlir --llm-prune="pattern=2:4 sparse-format=false" | FileCheck %s --check-prefix=DENSE
// Quantization keeps 2:4 matrices 2:4: their kept values become int8 or
// int4 codes, one f16 scale per 32 columns (22 / 14 bytes).
// RUN: llmc-opt %t.24.mlir --llm-quantize-weights="format=q8" | FileCheck %s --check-prefix=Q8
// RUN: llmc-opt %t.24.mlir --llm-quantize-weights="format=q4 keep=model.embed_tokens.weight=q8" -o %t.24q4.mlir
// RUN: FileCheck %s --check-prefix=Q4 < %t.24q4.mlir
// RUN: llmc compile %t.24q4.mlir -o %t.24q4 --quiet
// RUN: %t.24q4 --prompt-ids 1,5,9,3,12,7 --logits > %t.24q4.txt
// RUN: llmc-run --weights %t.24q4 --prompt-ids 1,5,9,3,12,7 --logits > %t.24q4.eval.txt
// RUN: %python %e2e/compare_logits.py %t.24q4.txt %t.24q4.eval.txt 1e-5
// Q8: llm.global @model.layers.1.mlp.down_proj.weight : !llm.weight<64x40, s24q8> = dense_resource<{{.+}}> : tensor<2816xi8>
// Q4: llm.global @model.layers.1.mlp.down_proj.weight : !llm.weight<64x40, s24q4> = dense_resource<{{.+}}> : tensor<1792xi8>
// DENSE: llm.global @model.layers.1.mlp.down_proj.weight : !llm.weight<64x40, f32>
// INSPECT: 0: attention 4/2, FFN 96, full rank, 50.0% zeros, 2:4 sparse{{$}}
// INSPECT: 1: attention 2/1, FFN 40, full rank, 50.0% zeros, 2:4 sparse{{$}}
// INSPECT: 2: attention 4/4, FFN 128, full rank, 50.0% zeros, 2:4 sparse{{$}}

// Errors: one line each.
// RUN: not llmc-opt %t.mlir --llm-prune="pattern=3:7" 2>&1 | FileCheck %s --check-prefix=SHAPE
// RUN: not llmc-opt %t.mlir --llm-prune="pattern=4:2" 2>&1 | FileCheck %s --check-prefix=PATTERN
// RUN: not llmc-opt %t.mlir --llm-prune="ratio=0" 2>&1 | FileCheck %s --check-prefix=RATIO
// RUN: not llmc-opt %t.mlir --llm-prune="method=sparsegpt" 2>&1 | FileCheck %s --check-prefix=METHOD
// RUN: sed -e 's/, llm.calibration = dense<.*> : tensor<2x16xi32>//' %t.mlir > %t.nocalib.mlir
// RUN: not llmc-opt %t.nocalib.mlir --llm-prune="method=wanda" 2>&1 | FileCheck %s --check-prefix=NOCALIB
// SHAPE: error: llm-prune: @model.layers.0.self_attn.q_proj.weight: rows of 64 weights cannot hold the 3:7 pattern (the row length must be a multiple of 7)
// PATTERN: error: llm-prune: pattern must be 'unstructured' or N:M with 0 < N < M <= 64, got '4:2'
// RATIO: error: llm-prune: ratio must be between 0 and 1 (exclusive), got 0
// METHOD: error: llm-prune: unknown method 'sparsegpt' (magnitude or wanda)
// NOCALIB: error: llm-prune: needs calibration tokens
