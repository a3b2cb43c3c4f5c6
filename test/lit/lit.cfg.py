# lit configuration of llmc's FileCheck tests.
import os
import sys
import lit.formats

config.name = "llmc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
config.excludes = ["lit.cfg.py", "lit.site.cfg.py", "Inputs"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.llmc_obj_root, "test", "lit")

path = os.pathsep.join([config.llmc_tools_dir, config.llvm_tools_dir,
                        config.environment.get("PATH", os.environ["PATH"])])
config.environment["PATH"] = path
config.substitutions.append(("%python", sys.executable))
config.substitutions.append(("%e2e", os.path.join(config.llmc_src_root, "test", "e2e")))
config.substitutions.append(("%src", config.llmc_src_root))

# Tests that need ../shared (the stories260K model, data) declare
# `REQUIRES: shared-models`; without it they are reported UNSUPPORTED.
shared_model = os.path.join(config.llmc_shared_dir, "models", "stories260K", "config.json")
if os.path.exists(shared_model):
    config.available_features.add("shared-models")
    config.substitutions.append(("%shared", config.llmc_shared_dir))
else:
    lit_config.note("shared/models not found at %s: model tests are skipped" % config.llmc_shared_dir)

# SmolLM2-135M (GGUF) and the Python reference tools, fetched into the build
# tree by scripts/fetch_models.sh: tests declare `REQUIRES: smollm2` and/or
# `REQUIRES: py-reference` and are UNSUPPORTED without them.
smollm2 = os.environ.get("LLMC_SMOLLM2_GGUF") or os.path.join(
    os.environ.get("LLMC_MODEL_CACHE") or os.path.join(config.llmc_obj_root, "models"),
    "SmolLM2-135M-Instruct.Q4_1.gguf")
if os.path.exists(smollm2):
    config.available_features.add("smollm2")
    config.substitutions.append(("%smollm2", smollm2))
else:
    lit_config.note("SmolLM2 GGUF not found at %s (scripts/fetch_models.sh): "
                    "its tests are skipped" % smollm2)
refpy = os.path.join(config.llmc_obj_root, "venv-test", "bin", "python")
if os.path.exists(refpy):
    config.available_features.add("py-reference")
    config.substitutions.append(("%refpy", refpy))
else:
    lit_config.note("no %s (scripts/fetch_models.sh): tests against gguf and "
                    "tokenizers are skipped" % refpy)

# The CUDA backend is built when nvcc was found at configure time: tests of
# --target cuda declare `REQUIRES: cuda-backend`. None of them needs a GPU
# (bench/gpu/ checks the GPU itself).
if config.llmc_have_cuda in ("ON", "1", "TRUE"):
    config.available_features.add("cuda-backend")
else:
    lit_config.note("built without the CUDA backend: --target cuda tests are skipped")
