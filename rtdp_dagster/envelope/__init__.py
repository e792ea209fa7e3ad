"""The self-describing JSON envelope of one data point on Kafka (docs/envelope.schema.json, docs/envelope-v2.md)."""
