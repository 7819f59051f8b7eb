"""The pipeline's stages, batch by batch: process (normalize, match, plan) and deliver."""
