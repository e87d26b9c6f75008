"""Online serving: retrieval from the online store, responses and the serving log."""
