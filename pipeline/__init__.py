"""Everything after the shards: loading, models, training, evaluation, export, sweeps, CLI."""
