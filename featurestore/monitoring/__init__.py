"""Monitoring: feature profiles, the drift and skew reports built on them, and their HTML."""
