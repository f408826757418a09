#!/usr/bin/env bash
# The paper's comparisons on the embedded default, offline on a CPU (about 13 minutes on two cores;
# QUICK=1 for about a minute). Results land in runs/demo: results.json, report.md, plots.
set -euo pipefail
if [ "${QUICK:-0}" = 1 ]; then stepdpo demo --quick --out runs/demo-quick; else stepdpo demo --out runs/demo; fi
