"""The speed layer: Spark Structured Streaming from Kafka to quarantine, bronze and the realtime TSDB."""
