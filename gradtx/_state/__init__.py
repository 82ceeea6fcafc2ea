"""State tools: reading and writing state by name, state dicts, checkpoints, sharding, layouts."""
