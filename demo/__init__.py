"""Training, judging and exporting the built-in "shapes-demo" model (see docs/demo-model.md)."""
