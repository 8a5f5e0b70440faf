"""Training support: image data in memory, random crops, checkpoints."""
