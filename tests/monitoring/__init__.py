"""Tests of featurestore.monitoring."""
