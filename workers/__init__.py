"""Kafka serving around `reasoning/`: batch consumers, transactional delivery to Kafka and
PostgreSQL, the reasoner child process and worker status. No model maths here."""
