"""Plumbing every process shares: database pool and retry, health and metrics endpoints,
logging, the heap, the one process fleet, Kafka client configuration, topic admin and the
one topic reader. No business logic lives here (see `docs/design.md`, "Layers")."""
