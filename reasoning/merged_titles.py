"""Why 1-hop Hits@1 on MetaQA stops short of 1: one title, several films, one question each.

The KB names films by title only, so remakes share a node ("King Kong" 1933 and 2005).
MetaQA asks its 1-hop questions per film: "who acted in [King Kong]" appears once with the
1933 cast as gold and once with the 2005 cast, in whichever split each copy fell into. The
model sees the same text and the same subgraph both times, so no ranking can be right for
both: on such a question the best any reasoner can expect is the share of the tied
candidates that are gold.

`python -m reasoning.merged_titles` measures this on the packaged data:

* `strict_subset`: questions whose gold is a strict subset of what their relation reaches
  from the topic (the relation being the smallest one whose neighbours hold the gold);
* `chance_hits`: the expected Hits@1 on those when the reachable answers tie (what an
  ideal reasoner can expect without guessing which film was meant);
* `repeated`: (topic, relation) pairs asked more than once across qa_train and qa_val, and
  how many of them have different gold each time (the proof that the ties are real);
* `ceiling`: Hits@1 if every other question is answered and these at chance.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from dataclasses import dataclass

import orjson

from reasoning.kb import KnowledgeBase
from reasoning.metaqa import QAPair, Split, qa_file, read_qa


@dataclass(frozen=True)
class Reach:
    """Where a question's gold lies: its topic, the relation that reaches the gold, and
    every entity that relation reaches."""

    topic: str
    relation: str
    reachable: frozenset[str]


def reach(kb: KnowledgeBase, pair: QAPair) -> Reach | None:
    """The smallest one-relation neighbourhood of the topic that holds every gold answer."""
    topic = pair.topic_entity
    tid = kb.entity_id(topic) if topic else None
    if tid is None:
        return None
    gold = set(pair.answers)
    best: Reach | None = None
    for rel in kb.relations_of(tid):
        names = frozenset(kb.names[e] for e in kb.neighbors(tid, int(rel)))
        if gold <= names and (best is None or len(names) < len(best.reachable)):
            best = Reach(topic, kb.relations[int(rel)], names)
    return best


def measure(kb: KnowledgeBase, split: Split = "val", hop: int = 1) -> dict:
    """The figures in the module docstring for one split (repeats counted over both)."""
    pairs = {s: read_qa(qa_file(hop, s)) for s in ("train", "val")}
    asked: dict[tuple[str, str], list[frozenset[str]]] = defaultdict(list)
    strict = 0
    chance = 0.0
    for s, items in pairs.items():
        for pair in items:
            where = reach(kb, pair)
            if where is None or len(where.reachable) == len(set(pair.answers)):
                continue
            asked[(where.topic, where.relation)].append(frozenset(pair.answers))
            if s == split:
                strict += 1
                chance += len(set(pair.answers)) / len(where.reachable)
    repeated = [golds for golds in asked.values() if len(golds) > 1]
    n = len(pairs[split])
    return {
        "split": split,
        "hop": hop,
        "n": n,
        "strict_subset": strict,
        "chance_hits": round(chance, 1),
        "repeated_pairs": len(repeated),
        "repeated_with_different_gold": sum(len(set(g)) > 1 for g in repeated),
        "ceiling": round((n - strict + chance) / n, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reasoning.merged_titles", description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=["train", "val"], default="val")
    args = parser.parse_args(argv)
    print(orjson.dumps(measure(KnowledgeBase.load(), args.split)).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
