"""Training machinery around mmengine's Runner: runtime patches, hooks, resume helpers."""
