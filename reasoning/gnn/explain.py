"""`autoglm explain`: draw an answer's subgraph with its reasoning paths highlighted.

Input is an `Answer` as JSON (the `answers.payload` column): its `topic_entity`, `answers`
and `paths` ([entity, relation, entity, …] per answer). The subgraph is rebuilt from the KB
the way the reasoner builds it: layered from the topic entity along the relations the
paths take at each hop. Every path is drawn; around it, the heaviest other nodes of each
layer (up to `context` per layer) show what else the question's relations reach.

Formats: `dot` (Graphviz source), `svg` (needs Graphviz's `dot` on PATH: `apt-get install
graphviz`), `mermaid` (a flowchart for Markdown).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from reasoning.gnn.subgraph import HopChoices, RelationIndex, expand
from reasoning.kb import KnowledgeBase

FORMATS = ("dot", "svg", "mermaid")
MAX_PATHS = 10  # answers whose paths are drawn (best first)
CONTEXT = 4  # other nodes per layer
REBUILD_NODES = 2000  # node budget of the rebuilt subgraph the context is picked from

Node = tuple[int, int]  # (hop layer, entity id)


@dataclass
class Drawing:
    """What gets drawn: nodes keyed by (layer, entity), edges by (node, relation, node)."""

    title: str
    topic: Node
    answers: set[Node] = field(default_factory=set)
    nodes: dict[Node, str] = field(default_factory=dict)  # node -> label
    edges: dict[tuple[Node, int, Node], bool] = field(default_factory=dict)  # -> on a reasoning path


def render(answer_payload: dict[str, Any], fmt: str, kb: KnowledgeBase | None = None) -> str:
    """The answer's subgraph as `dot`, `svg` or `mermaid` text."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    kb = kb or _default_kb()
    drawing = build(answer_payload, kb)
    if fmt == "mermaid":
        return to_mermaid(drawing, kb)
    dot = to_dot(drawing, kb)
    return dot if fmt == "dot" else dot_to_svg(dot)


def build(payload: dict[str, Any], kb: KnowledgeBase, context: int = CONTEXT) -> Drawing:
    """The nodes and edges to draw for one answer payload."""
    topic_name = payload.get("topic_entity")
    if not topic_name:
        question, status = payload.get("question_id"), payload.get("status")
        raise ValueError(f"answer {question} has no topic entity (status {status!r}): nothing to draw")
    topic = _entity(kb, topic_name)
    walks = [_walk(kb, p) for p in (payload.get("paths") or [])[:MAX_PATHS] if p]
    title = str(payload.get("text") or "")
    drawing = Drawing(title=title, topic=(0, topic))
    drawing.nodes[(0, topic)] = topic_name
    for walk in walks:
        if walk[0] != topic:
            raise ValueError(f"path starts at {kb.names[walk[0]]!r}, not at the topic entity {topic_name!r}")
        for t in range(1, len(walk) // 2 + 1):
            a, r, b = (t - 1, walk[2 * t - 2]), walk[2 * t - 1], (t, walk[2 * t])
            drawing.nodes[b] = kb.names[b[1]]
            drawing.edges[(a, r, b)] = True
        drawing.answers.add((len(walk) // 2, walk[-1]))
    if walks and context > 0:
        _add_context(drawing, kb, topic, walks, context)
    return drawing


def _add_context(drawing: Drawing, kb: KnowledgeBase, topic: int, walks: list[list[int]], context: int) -> None:
    """The heaviest other nodes per layer of the subgraph along the paths' relations."""
    depth = max(len(w) // 2 for w in walks)
    hops = []
    for t in range(depth):
        relations = sorted({w[2 * t + 1] for w in walks if len(w) // 2 > t})
        hops.append(
            HopChoices(
                np.zeros(len(relations), np.int64), np.array(relations, np.int64), np.ones(len(relations), np.float32)
            )
        )
    sub = expand(_index(kb), np.array([topic]), hops, REBUILD_NODES)
    nodes = list(zip(sub.layer.tolist(), sub.entity.tolist()))  # per layer, heaviest first
    parents: dict[Node, set[Node]] = {}
    for s, d in zip(sub.src.tolist(), sub.dst.tolist()):
        parents.setdefault(nodes[d], set()).add(nodes[s])
    for t in range(1, depth + 1):  # context hangs off what is drawn, never floats alone
        others = [
            n for n in nodes if n[0] == t and n not in drawing.nodes and parents.get(n, set()) & drawing.nodes.keys()
        ]
        drawing.nodes.update({n: kb.names[n[1]] for n in others[:context]})
    for s, r, d in zip(sub.src.tolist(), sub.relation.tolist(), sub.dst.tolist()):
        a, b = nodes[s], nodes[d]
        if a in drawing.nodes and b in drawing.nodes and (a, r, b) not in drawing.edges:
            drawing.edges[(a, r, b)] = False


# --- formats ---------------------------------------------------------------------------------


def to_dot(drawing: Drawing, kb: KnowledgeBase) -> str:
    ids = {node: f"n{i}" for i, node in enumerate(sorted(drawing.nodes))}
    lines = [
        "digraph answer {",
        '  rankdir=LR; newrank=true; fontname="Helvetica"; labelloc=t;',
        f'  label="{_dot_escape(drawing.title)}";',
        '  node [shape=box, style="rounded,filled", fillcolor=white, color=gray50, fontname="Helvetica"];',
        '  edge [color=gray70, fontcolor=gray45, fontsize=10, fontname="Helvetica"];',
    ]
    for layer in sorted({n[0] for n in drawing.nodes}):
        members = " ".join(ids[n] for n in sorted(drawing.nodes) if n[0] == layer)
        lines.append(f"  {{ rank=same; {members} }}")
    for node, label in sorted(drawing.nodes.items()):
        style = ""
        if node == drawing.topic:
            style = ', fillcolor="#ffd966", color="#7f6000", penwidth=2'
        elif node in drawing.answers:
            style = ', fillcolor="#b6d7a8", color="#cc0000", penwidth=2'
        elif any(on and node in (a, b) for (a, _, b), on in drawing.edges.items()):
            style = ', color="#cc0000", penwidth=2'
        lines.append(f'  {ids[node]} [label="{_dot_escape(label)}"{style}];')
    for (a, r, b), on in sorted(drawing.edges.items(), key=lambda item: item[1]):
        style = ', color="#cc0000", fontcolor="#cc0000", penwidth=2.5' if on else ""
        lines.append(f'  {ids[a]} -> {ids[b]} [label="{_dot_escape(kb.relations[r])}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(drawing: Drawing, kb: KnowledgeBase) -> str:
    ids = {node: f"n{i}" for i, node in enumerate(sorted(drawing.nodes))}
    lines = ["---", f"title: {_mermaid_escape(drawing.title)}", "---", "flowchart LR"]
    for node, label in sorted(drawing.nodes.items()):
        cls = ":::topic" if node == drawing.topic else ":::answer" if node in drawing.answers else ""
        lines.append(f'  {ids[node]}["{_mermaid_escape(label)}"]{cls}')
    highlighted = []
    for k, ((a, r, b), on) in enumerate(sorted(drawing.edges.items(), key=lambda item: item[1])):
        lines.append(f'  {ids[a]} -- "{_mermaid_escape(kb.relations[r])}" --> {ids[b]}')
        if on:
            highlighted.append(str(k))
    if highlighted:
        lines.append(f"  linkStyle {','.join(highlighted)} stroke:#cc0000,stroke-width:3px,color:#cc0000")
    lines.append("  classDef topic fill:#ffd966,stroke:#7f6000,stroke-width:2px")
    lines.append("  classDef answer fill:#b6d7a8,stroke:#cc0000,stroke-width:2px")
    return "\n".join(lines) + "\n"


def dot_to_svg(dot: str) -> str:
    """SVG through Graphviz; a clear error when it is not installed."""
    binary = shutil.which("dot")
    if binary is None:
        raise RuntimeError(
            "SVG needs Graphviz's `dot` program, which is not installed: `apt-get install graphviz` "
            "(or `brew install graphviz`), or use --format dot|mermaid"
        )
    done = subprocess.run([binary, "-Tsvg"], input=dot.encode("utf-8"), capture_output=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"graphviz failed: {done.stderr.decode('utf-8', 'replace').strip()}")
    return done.stdout.decode("utf-8")


# --- helpers ---------------------------------------------------------------------------------


def _entity(kb: KnowledgeBase, name: str) -> int:
    entity = kb.entity_id(name)
    if entity is None:
        raise ValueError(f"{name!r} is not an entity of this knowledge base (was the answer made with another KB?)")
    return entity


def _walk(kb: KnowledgeBase, path: list[str]) -> list[int]:
    """[entity, relation, entity, …] names → ids."""
    if len(path) % 2 == 0:
        raise ValueError(f"a path alternates entity, relation, …, entity; got {len(path)} items: {path}")
    return [_entity(kb, x) if i % 2 == 0 else kb.relation_id(x) for i, x in enumerate(path)]


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def _mermaid_escape(text: str) -> str:
    return text.replace('"', "#quot;").replace("\n", " ")


@lru_cache(maxsize=1)
def _default_kb() -> KnowledgeBase:
    from schemas.settings import get_settings

    return KnowledgeBase.from_settings(get_settings())


_INDEXES: dict[int, tuple[KnowledgeBase, RelationIndex]] = {}


def _index(kb: KnowledgeBase) -> RelationIndex:
    """One relation index per KB object (building it costs ~10 ms; explain may be called often)."""
    if id(kb) not in _INDEXES:
        _INDEXES.clear()
        _INDEXES[id(kb)] = (kb, RelationIndex(kb))
    return _INDEXES[id(kb)][1]
