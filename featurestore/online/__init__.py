"""The online store: latest feature values per entity, and each entity's recent events for
windowed aggregations, for low-latency retrieval; materialization and push write them."""
