"""The online store: latest feature values per entity, for low-latency retrieval."""
