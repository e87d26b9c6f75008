"""Monitoring: feature profiles now; drift and skew reports build on them."""
