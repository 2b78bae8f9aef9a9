"""The embedded Apache Kafka: one broker or a KRaft cluster on loopback, and its security."""
