"""Layer 4 of pipeline: standard errors per element and group, rare-event metrics, property tests, peers, reports,
and checkpoint selection (scoring a run's checkpoints as their exports would hold them)."""
