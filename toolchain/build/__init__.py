"""The build: one target's context, the stage registry, and running a stage to its stamp."""
