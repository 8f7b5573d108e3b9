"""Evaluation: standard errors per element and group, rare-event metrics, property tests, reports."""
