"""Sharded dataset builders: raw DFT sources -> validated, deduplicated, split webdataset shards."""

FORMAT_VERSION = 1
