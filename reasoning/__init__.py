"""Everything that answers a question without Kafka or PostgreSQL: the knowledge graph,
entity linking, the question encoder, the baseline and GNN reasoners, training,
evaluation and explanation. Never imports aiokafka, faust or asyncpg (import-linter)."""
