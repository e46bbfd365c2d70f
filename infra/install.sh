#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine: uv, Java 17, Maven, Graphviz
# (`dot`, for `autoglm explain --format svg`), and the locked Python environment.
# Idempotent: each step is skipped when already satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
command -v dot >/dev/null 2>&1 || need_apt+=(graphviz)
if ((${#need_apt[@]})); then
  echo "installing ${need_apt[*]} with apt-get" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v uv >/dev/null 2>&1; then
  echo "installing uv with pip" >&2
  python3 -m pip install --quiet --disable-pip-version-check uv
fi

# uv keeps wheels (torch included) in its cache, so a fresh clone installs in seconds.
uv sync --frozen --quiet
