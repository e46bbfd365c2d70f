"""The GNN model's construction leaves nothing behind on disk (no services needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BUILD = """
from reasoning.gnn.model import QuestionGAT
QuestionGAT(q_dim=8, node_dim=5, num_relations=4)
print("built")
"""


def test_building_the_model_leaves_no_generated_code_in_tmp(tmp_path: Path) -> None:
    """torch_geometric writes the first GATv2Conv's generated code to temp files it never
    deletes; a fresh process (the only kind that generates it) must leave TMPDIR empty."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", BUILD], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "built" in done.stdout
    # torch keeps its compile cache folder there on purpose (torchinductor_<user>)
    left = sorted(p.name for p in tmp_path.rglob("*.py"))
    assert left == [], f"generated code left in TMPDIR: {left}"
