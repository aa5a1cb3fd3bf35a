"""Decoding uploads: protobuf LogGroupList and JSON, compression, time units, limits."""
