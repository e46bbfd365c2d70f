"""Fine-tuning the question encoder end to end with the relation head.

What it learns from (`twin_phrasings`): every masked `qa_train` question, vanilla and NTM.
MetaQA's NTM `qa_train` is line-aligned with the vanilla one (same topic, same answers), so
an NTM question takes the soft per-hop target of its vanilla twin's template
(`supervision.hop_targets` of the paths mined for it); a phrasing seen with several
templates averages their targets, weighted by how often.

What is trained (`finetune`): first the relation head alone on the clean phrasings' vectors
(`fit_head`, a linear probe), then the first K transformer layers of MiniLM and the head
together on augmented phrasings (`augment.Augmenter`), with the loss of the head:

    loss = − Σ_t Σ_c y_tc log softmax(z_t)_c        (soft cross-entropy, summed over hops t)

where z = head(mean_pool(layers_1…K(embed(text)))). The word embeddings stay frozen: they
come from the package, and they keep what MiniLM knows about words training never shows.
Phrasings are drawn with probability ∝ √(questions behind them), so the 518 vanilla
templates (repeated ~70 times each) do not drown the NTM ones.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from reasoning.encoder import MAX_TOKENS, load_model, load_tokenizer, mean_pool
from reasoning.gnn.augment import Augmenter
from reasoning.gnn.relation_head import RelationHead
from reasoning.gnn.supervision import RelationPath, hop_targets
from reasoning.linking import template_key
from reasoning.metaqa import bracket_span, read_qa


@dataclass
class Phrasings:
    """Distinct masked training questions with their soft targets."""

    texts: list[str]  # template_key of the bracketed question
    targets: np.ndarray  # (N, T, R + 1) soft per-hop targets
    counts: np.ndarray  # (N,) training questions behind each text
    variants: list[str]  # "vanilla", "ntm" or "both": where the text was seen


@dataclass
class TuningArgs:
    layers: int = 2
    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-4  # transformer layers
    head_lr: float = 2e-3
    warmup: int = 100
    probe_steps: int = 300  # full-batch steps of the head alone before fine-tuning


def masked(question: str) -> str | None:
    """The template key of a bracketed question, None when it has no brackets."""
    marked = bracket_span(question)
    return template_key(question, marked[:2]) if marked else None


def twin_phrasings(
    paths: dict[str, Counter[RelationPath]],
    files: Sequence[tuple[Path, Path]],
    num_relations: int,
    max_hops: int,
) -> Phrasings:
    """(vanilla, NTM) `qa_train` file pairs → every phrasing with its twin's target."""
    targets: dict[str, np.ndarray] = {}
    sums: dict[str, np.ndarray] = {}
    counts: Counter[str] = Counter()
    seen: dict[str, set[str]] = {}
    for vanilla_file, ntm_file in files:
        vanilla, ntm = read_qa(vanilla_file), read_qa(ntm_file)
        if len(vanilla) != len(ntm):
            raise ValueError(f"{ntm_file} has {len(ntm)} lines, {vanilla_file} {len(vanilla)}: they must align")
        for v, n in zip(vanilla, ntm):
            key = masked(v.question)
            if key is None or not paths.get(key):
                continue
            if key not in targets:
                targets[key] = hop_targets(paths[key], num_relations, max_hops)
            for variant, text in (("vanilla", key), ("ntm", masked(n.question))):
                if text is None:
                    continue
                sums[text] = sums.get(text, 0.0) + targets[key]
                counts[text] += 1
                seen.setdefault(text, set()).add(variant)
    texts = sorted(sums)
    return Phrasings(
        texts=texts,
        targets=np.stack([sums[t] / counts[t] for t in texts]).astype(np.float32),
        counts=np.array([counts[t] for t in texts], dtype=np.int64),
        variants=["both" if len(seen[t]) == 2 else next(iter(seen[t])) for t in texts],
    )


def finetune(
    phrasings: Phrasings, head: RelationHead, args: TuningArgs, augmenter: Augmenter, rng: np.random.Generator
) -> nn.Module:
    """The first `args.layers` MiniLM layers and `head`, trained together; returns the model."""
    tokenizer = load_tokenizer()
    model = load_model(args.layers)
    model.embeddings.requires_grad_(False)
    layers = [p for p in model.parameters() if p.requires_grad]
    # Linear probe first (the head on the untouched layers' vectors, full batch), then both
    # together: a random head's first gradients would otherwise scramble the pretrained layers.
    with torch.no_grad():
        model.eval()
        start = torch.cat(
            [_pooled(model, tokenizer, phrasings.texts[i : i + 256]) for i in range(0, len(phrasings.texts), 256)]
        )
    fit_head(head, start.numpy(), phrasings.targets, args.probe_steps)
    optimiser = torch.optim.AdamW(
        [{"params": layers, "lr": args.lr}, {"params": head.parameters(), "lr": args.head_lr}], weight_decay=0.01
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: warmup_then_cosine(step, args))
    weights = np.sqrt(phrasings.counts.astype(np.float64))
    weights /= weights.sum()
    targets = torch.from_numpy(phrasings.targets)
    model.train()
    head.train()
    running = None
    bar = tqdm(range(args.steps), desc=f"encoder ({args.layers} layers) + head", unit="step")
    for _ in bar:
        rows = rng.choice(len(phrasings.texts), size=args.batch_size, p=weights)
        texts = [augmenter(phrasings.texts[i]) for i in rows]
        loss = soft_cross_entropy(head(_pooled(model, tokenizer, texts)), targets[rows])
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(layers + list(head.parameters()), 1.0)
        optimiser.step()
        schedule.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        bar.set_postfix(loss=f"{running:.4f}")
    model.eval()
    head.eval()
    print(f"[train] encoder + head: running loss {running:.4f}", file=sys.stderr)
    return model


def fit_head(head: RelationHead, vectors: np.ndarray, targets: np.ndarray, steps: int, lr: float = 3e-3) -> None:
    """The head alone on fixed vectors: full-batch AdamW on the soft cross-entropy."""
    x, y = torch.from_numpy(vectors), torch.from_numpy(targets)
    optimiser = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    head.train()
    for _ in tqdm(range(steps), desc="relation head", unit="step"):
        loss = soft_cross_entropy(head(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    head.eval()
    print(
        f"[train] relation head alone: loss {loss.item():.4f}, path is argmax for "
        f"{path_accuracy(head, vectors, targets):.4f} of the phrasings",
        file=sys.stderr,
    )


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """−Σ_t Σ_c y_tc log softmax(z_t)_c, summed over hops, averaged over the batch."""
    return -(targets * torch.log_softmax(logits, dim=-1)).sum(dim=(1, 2)).mean()


def _pooled(model: nn.Module, tokenizer: object, texts: Sequence[str]) -> torch.Tensor:
    tokens = tokenizer(list(texts), padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")  # type: ignore[operator]
    return mean_pool(model(**tokens).last_hidden_state, tokens["attention_mask"])


def warmup_then_cosine(step: int, args: TuningArgs) -> float:
    """Learning-rate factor: linear warm-up over `args.warmup` steps, then a cosine to 0."""
    if step < args.warmup:
        return (step + 1) / args.warmup
    done = (step - args.warmup) / max(1, args.steps - args.warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, done)))


def path_accuracy(head: RelationHead, vectors: np.ndarray, targets: np.ndarray) -> float:
    """Share of phrasings whose argmax class at every hop is their target's."""
    with torch.no_grad():
        predicted = head(torch.from_numpy(vectors)).argmax(-1)
    return float((predicted == torch.from_numpy(targets).argmax(-1)).all(dim=1).float().mean())
