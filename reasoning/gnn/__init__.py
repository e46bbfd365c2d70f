"""The GNN reasoner: link → encode → predict relations per hop → expand a weighted subgraph →
question-conditioned GATv2 over all subgraphs of a batch at once → decode answers and paths.

One job per module:

- `relation_head`: per-hop relation distributions from the question vector;
- `encoder_tuning`, `augment`: the first MiniLM layers fine-tuned with the relation head on
  vanilla and NTM phrasings, augmented as people phrase questions (`reasoning.encoder`
  serves them);
- `encode_cache`: bounded LRU cache of question vectors keyed by the entity-masked template;
- `subgraph`: layered expansion over a relation-stacked CSR index of the KB, with a node budget;
- `model`: the graph attention network (GATv2 layers with question FiLM and relation edges);
- `tensors`: numpy subgraphs → torch tensors (node and edge features);
- `decoder`: node scores → answer sets, confidence and backtracked reasoning paths;
- `supervision`: relation-path targets mined from `qa_train` (no relation labels in MetaQA);
- `checkpoint`: the committed weights and everything the reasoner needs besides the KB;
- `tuning`: the answer-set threshold tuned on `qa_val`, the figures and data checksums;
- `reasoner`: `GnnReasoner`, the `Reasoner` the worker calls;
- `train`, `explain`: the `autoglm train` and `autoglm explain` entry points.
"""
