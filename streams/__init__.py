"""The Faust stream processor: ingest, validation, dead letters, safety gate, dedup, per-key
dynamic batching, routing, feedback and replay. No model inference here."""
