"""`autoglm train`: fine-tune the question encoder with the relation head, then train the
GATv2, on MetaQA `qa_train` (vanilla + NTM), on a CPU.

    uv run python -m reasoning.gnn.train                # writes reasoning/checkpoints/gnn.pt

Phases (progress bars on stderr, fixed seed):

1. mine relation-path targets per vanilla question template from the KB (`supervision`,
   ~20 s); every NTM question takes its vanilla twin's (`encoder_tuning.twin_phrasings`);
2. fine-tune the first `--encoder-layers` MiniLM layers end to end with the relation head on
   augmented phrasings (`encoder_tuning`, `augment`; embeddings frozen); with
   `--encoder-layers 0` the packaged encoder stays frozen and only the head is trained
   (full batch, as before format 2);
3. encode every training phrasing, and one augmented copy of each, with the encoder exactly
   as it is served (the stored layers, in `--precision`);
4. GNN: subgraphs built with the trained head (plus random distractor relations and one
   extra hop, so it learns to weigh relations rather than trust them) and scored against
   the gold answers at the question's hop layer, on vanilla and NTM questions, half of them
   with their augmented vector. Loss per question:

       BCE(s_v, y_v) averaged over the question's nodes  −  log Σ_{v: y_v = 1} softmax_q(s)_v

   (calibrated per-node probabilities for the answer set, plus "some answer ranks first");
5. tune the answer-set threshold for F1 on vanilla and NTM `qa_val`, evaluate every hop,
   bracketed and raw text (`tuning`), and save everything (weights, figures, data
   checksums, this command).
"""

from __future__ import annotations

import argparse
import logging
import math
import shlex
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from reasoning.device import configure_threads
from reasoning.encoder import PRECISIONS, QuestionEncoder, TunedStack, layer_weights
from reasoning.gnn.augment import GROUPS, Augmenter
from reasoning.gnn.checkpoint import DEFAULT_PATH, Checkpoint, Config, pack_layers, unpack_layers
from reasoning.gnn.encoder_tuning import Phrasings, TuningArgs, finetune, fit_head, path_accuracy, twin_phrasings
from reasoning.gnn.model import QuestionGAT
from reasoning.gnn.relation_head import RelationHead, hop_choices, length_distribution
from reasoning.gnn.subgraph import HopChoices, RelationIndex, Subgraphs, expand
from reasoning.gnn.supervision import TrainQuestion, mine_supervision, read_questions
from reasoning.gnn.tensors import node_dim, to_tensors
from reasoning.gnn.tuning import data_checksums, print_figures, tune_and_evaluate
from reasoning.kb import KnowledgeBase, file_sha256
from reasoning.metaqa import HOPS, KB_FILE, qa_file
from schemas.settings import Settings

log = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="autoglm train", description="Train the GNN reasoner on MetaQA qa_train (CPU).")
    p.add_argument("--out", type=Path, default=DEFAULT_PATH, help="checkpoint to write (default: the committed one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads; 1 is fastest for these small graphs on a shared CPU (0: all cores up to 8)",
    )
    p.add_argument(
        "--head-steps",
        type=int,
        default=300,
        help="full-batch steps of the head alone (with --encoder-layers 0, all its training)",
    )
    p.add_argument(
        "--encoder-layers", type=int, default=2, help="MiniLM layers kept and fine-tuned (0: packaged encoder, frozen)"
    )
    p.add_argument("--encoder-steps", type=int, default=2000, help="fine-tuning steps of the encoder and head")
    p.add_argument("--encoder-batch", type=int, default=32, help="phrasings per fine-tuning step")
    p.add_argument("--encoder-lr", type=float, default=1e-4, help="peak learning rate of the encoder layers")
    p.add_argument("--encoder-threads", type=int, default=1, help="torch CPU threads while fine-tuning the encoder")
    p.add_argument(
        "--augment",
        default="all",
        help=f"augmentation groups: all, none, a comma list of {', '.join(GROUPS)}, or all minus -group,-group",
    )
    p.add_argument(
        "--precision", choices=PRECISIONS, default="bf16", help="how the tuned layers run on a CPU (default bf16)"
    )
    p.add_argument("--store", choices=["int8", "fp16"], default="int8", help="how the layers are stored")
    p.add_argument("--no-ntm", dest="ntm", action="store_false", help="train on vanilla qa_train only")
    p.add_argument(
        "--epochs", type=int, default=4, help="GNN epochs, each over --questions-per-epoch sampled questions"
    )
    p.add_argument("--questions-per-epoch", type=int, default=16_000, help="training questions sampled per epoch")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--train-max-nodes", type=int, default=600, help="subgraph node budget per question in training")
    p.add_argument("--val-limit", type=int, default=None, help="qa_val questions per hop for tuning and figures (all)")
    p.add_argument("--fresh", action="store_true", help="re-mine relation paths even if cached in the state folder")
    p.add_argument("--no-eval", action="store_true", help="skip tuning and evaluation (keeps threshold 0.5)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    settings = Settings(torch_threads=args.threads, device="cpu")
    configure_threads(settings)
    phases: dict[str, float] = {}

    def phase(name: str, since: float) -> float:
        phases[name] = round(time.perf_counter() - since, 1)
        print(f"[train] {name}: {phases[name]} s", file=sys.stderr)
        return time.perf_counter()

    t = time.perf_counter()
    kb = KnowledgeBase.load(KB_FILE, cache_dir=settings.state_dir / "kb")
    supervision = mine_supervision(
        kb,
        [(hop, qa_file(hop, "train")) for hop in HOPS],
        progress=lambda it: tqdm(list(it), desc="mine paths", unit="block"),
        cache_dir=None if args.fresh else settings.state_dir / "gnn",
    )
    variants = ("vanilla", "ntm") if args.ntm else ("vanilla",)
    pairs = [(qa_file(hop, "train"), qa_file(hop, "train", variants[-1])) for hop in HOPS]
    phrasings = twin_phrasings(supervision.paths, pairs, kb.num_relations, Config.max_hops)
    t = phase("mine", t)

    cfg = Config(encoder_layers=args.encoder_layers, encoder_precision=args.precision)
    augmenter = Augmenter(augment_groups(args.augment), np.random.default_rng(args.seed + 1))
    encoder, head, packed = train_encoder_and_head(phrasings, cfg, kb.num_relations, augmenter, args)
    t = phase("encoder + relation head", t)

    keys = phrasings.texts
    vectors = encoder.encode(keys)
    augmented = encoder.encode([augmenter(k) for k in keys]) if augmenter.groups else vectors
    print(
        f"[train] relation head: phrasings whose path is argmax {path_accuracy(head, vectors, phrasings.targets):.4f}"
        f" (augmented {path_accuracy(head, augmented, phrasings.targets):.4f}, n={len(keys)})",
        file=sys.stderr,
    )
    t = phase("encode", t)

    gnn = QuestionGAT(
        encoder.dim,
        node_dim(cfg.max_hops),
        kb.num_relations,
        cfg.max_hops,
        cfg.gnn_hidden,
        cfg.gnn_heads,
        cfg.gnn_layers,
    )
    row = {k: i for i, k in enumerate(keys)}
    questions = supervision.questions
    if args.ntm:
        questions = questions + read_questions(kb, [(hop, qa_file(hop, "train", "ntm")) for hop in HOPS])
    usable = [q for q in questions if q.template in row and q.answers]
    train_gnn(gnn, head, RelationIndex(kb), cfg, usable, row, np.concatenate([vectors, augmented]), args, rng)
    t = phase("gnn", t)

    templates = Counter(supervision.templates)  # the linker's known templates: every training phrasing
    if args.ntm:
        templates.update(q.template for q in questions[len(supervision.questions) :])
    prefill = sorted(k for k in supervision.templates if k in row)  # vanilla templates: a new worker is warm for them
    checkpoint = Checkpoint(
        config=cfg,
        relations=list(kb.relations),
        head={k: v.detach().clone() for k, v in head.state_dict().items()},
        gnn={k: v.detach().clone() for k, v in gnn.state_dict().items()},
        templates=dict(templates),
        topic_names=[kb.names[i] for i, _ in supervision.topics.most_common()],
        topic_counts=[n for _, n in supervision.topics.most_common()],
        kb_sha256=kb.sha256 or file_sha256(KB_FILE),
        encoder=encoder.fingerprint,
        encoder_weights=packed,
        template_keys=prefill,
        template_vectors=torch.from_numpy(vectors[[row[k] for k in prefill]]).half(),
        data=data_checksums(),
        command="uv run python -m reasoning.gnn.train "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
    )
    if not args.no_eval:
        checkpoint.config.threshold, checkpoint.metrics = tune_and_evaluate(
            kb, encoder, checkpoint, settings, args.val_limit
        )
        t = phase("tune + evaluate", t)
    checkpoint.metrics["train_seconds"] = round(time.perf_counter() - started, 1)
    checkpoint.metrics["phases_seconds"] = phases
    checkpoint.metrics["torch_threads"] = torch.get_num_threads()
    checkpoint.metrics["encoder_threads"] = args.encoder_threads
    checkpoint.metrics["phrasings"] = {v: phrasings.variants.count(v) for v in ("vanilla", "ntm", "both")}
    checkpoint.save(args.out)
    print(
        f"[train] wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) in {checkpoint.metrics['train_seconds']} s",
        file=sys.stderr,
    )
    print_figures(checkpoint.metrics)
    return 0


def augment_groups(spec: str) -> list[str]:
    """`all`, `none`, `synonyms,typos` or `all,-typos` → the augmentation groups to apply."""
    groups: list[str] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if part == "all":
            groups = list(GROUPS)
        elif part == "none":
            groups = []
        elif part.startswith("-"):
            groups = [g for g in groups if g != part[1:]]
        else:
            groups.append(part)
    Augmenter(groups)  # rejects unknown names
    return groups


# --- encoder and relation head -------------------------------------------------------------


def train_encoder_and_head(
    phrasings: Phrasings, cfg: Config, num_relations: int, augmenter: Augmenter, args: argparse.Namespace
) -> tuple[QuestionEncoder, RelationHead, dict[str, torch.Tensor]]:
    """(the encoder as served, the trained head, the stored layers: empty when frozen)."""
    if cfg.encoder_layers == 0:
        encoder = QuestionEncoder(torch.device("cpu"))
        head = RelationHead(encoder.dim, num_relations, cfg.max_hops, cfg.head_hidden)
        fit_head(head, encoder.encode(phrasings.texts), phrasings.targets, args.head_steps)
        return encoder, head, {}
    head = RelationHead(384, num_relations, cfg.max_hops, cfg.head_hidden)  # MiniLM's width
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, args.encoder_threads))
    try:
        model = finetune(
            phrasings,
            head,
            TuningArgs(
                cfg.encoder_layers, args.encoder_steps, args.encoder_batch, args.encoder_lr, probe_steps=args.head_steps
            ),
            augmenter,
            np.random.default_rng(args.seed + 2),
        )
        packed = pack_layers(layer_weights(model), int8=args.store == "int8")
        tuned = TunedStack(cfg.encoder_layers, unpack_layers(packed), args.precision)
        encoder = QuestionEncoder(torch.device("cpu"), tuned)
        encoder.encode(["warm up"])
    finally:
        torch.set_num_threads(threads)
    return encoder, head, packed


# --- GNN -----------------------------------------------------------------------------------


def train_gnn(
    gnn: QuestionGAT,
    head: RelationHead,
    index: RelationIndex,
    cfg: Config,
    questions: list[TrainQuestion],
    row: dict[str, int],
    vectors: np.ndarray,
    args: argparse.Namespace,
    rng: np.random.Generator,
) -> None:
    """`vectors` holds every phrasing twice, clean (rows 0 … N−1) then augmented (N … 2N−1):
    each question takes one of the two at random."""
    n = len(vectors) // 2
    with torch.no_grad():
        probs_t = torch.softmax(head(torch.from_numpy(vectors)), dim=-1)
        probs, lengths = probs_t.numpy(), length_distribution(probs_t).numpy()
    optimiser = torch.optim.AdamW(gnn.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(min(args.questions_per_epoch, len(questions)) / args.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    gnn.train()
    for epoch in range(args.epochs):
        order = rng.permutation(len(questions))[: args.questions_per_epoch]
        bar = tqdm(range(steps_per_epoch), desc=f"gnn epoch {epoch + 1}/{args.epochs}", unit="batch")
        running = None
        for step in bar:
            batch = [questions[i] for i in order[step * args.batch_size : (step + 1) * args.batch_size]]
            rows = np.array([row[q.template] for q in batch]) + n * (rng.random(len(batch)) < 0.5)
            choices = with_distractors(probs[rows], cfg, rng)
            topics = np.array([q.topic for q in batch])
            sub = expand(index, topics, choices, args.train_max_nodes)
            tensors = to_tensors(sub, vectors[rows], lengths[rows], cfg.max_hops, torch.device("cpu"))
            labels = answer_labels(sub, batch, index.num_entities)
            logits, _ = gnn(*tensors.inputs())
            loss = answer_loss(
                logits, torch.from_numpy(labels), tensors.batch, torch.from_numpy(sub.layer > 0), len(batch)
            )
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(gnn.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
            bar.set_postfix(loss=f"{running:.4f}", nodes=sub.num_nodes)
    gnn.eval()


def with_distractors(probs: np.ndarray, cfg: Config, rng: np.random.Generator) -> list[HopChoices]:
    """The head's choices plus, per hop and question with probability ½, the best relation it
    left out (its small weight kept), and with probability ½ one hop past the predicted length."""
    base = hop_choices(probs, cfg.min_continue, cfg.min_share, cfg.max_relations)
    b, hops, _ = probs.shape
    stop = probs[..., -1]
    share = probs[..., :-1] / np.clip(1.0 - stop, 1e-9, None)[..., None]
    predicted = (np.cumprod(1.0 - stop, axis=1) >= cfg.min_continue).sum(axis=1)  # hops the head expands
    extra_hop = rng.random(b) < 0.5
    out = []
    for t, choice in enumerate(base):
        chosen = np.zeros((b, share.shape[2]), dtype=bool)
        chosen[choice.question, choice.relation] = True
        remaining = np.where(chosen, -1.0, share[:, t])
        best = remaining.argmax(axis=1)
        add = (rng.random(b) < 0.5) & (t < predicted) | ((t == predicted) & extra_hop)
        add &= remaining.max(axis=1) >= 0
        q = np.concatenate([choice.question, np.flatnonzero(add)])
        r = np.concatenate([choice.relation, best[add]])
        w = np.concatenate([choice.weight, np.maximum(share[add, t, best[add]], 1e-3).astype(np.float32)])
        order = np.argsort(q, kind="stable")
        out.append(HopChoices(q[order].astype(np.int64), r[order].astype(np.int64), w[order].astype(np.float32)))
    return out


def answer_labels(sub: Subgraphs, batch: Sequence[TrainQuestion], n_entities: int) -> np.ndarray:
    """1 for a node that is a gold answer at the question's own hop layer, else 0."""
    gold = np.array(
        [b * n_entities + a for b, q in enumerate(batch) for a in q.answers if a != q.topic], dtype=np.int64
    )
    hops = np.array([q.hops for q in batch])
    node_key = sub.question * n_entities + sub.entity
    return (np.isin(node_key, gold) & (sub.layer == hops[sub.question])).astype(np.float32)


def answer_loss(logits: Tensor, labels: Tensor, batch: Tensor, candidate: Tensor, b: int) -> Tensor:
    """Per-question mean BCE plus the ranking term (see the module docstring), over candidates."""
    logits, labels, batch = logits[candidate], labels[candidate], batch[candidate]
    count = torch.zeros(b).index_add_(0, batch, torch.ones_like(logits)).clamp(min=1)
    bce = nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    bce = torch.zeros(b).index_add_(0, batch, bce) / count
    top = torch.zeros(b).index_reduce_(0, batch, logits.detach(), "amax", include_self=False)
    ex = torch.exp(logits - top[batch])
    total = torch.zeros(b).index_add_(0, batch, ex)
    positive = torch.zeros(b).index_add_(0, batch, ex * labels)
    has = positive > 0
    rank = -(torch.log(positive[has]) - torch.log(total[has]))
    return bce.mean() + (rank.sum() / b)


if __name__ == "__main__":
    raise SystemExit(main())
