"""The self-describing JSON envelope of one data point on Kafka (ARCHITECTURE.md, part 2)."""
