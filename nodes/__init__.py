"""The Stable Diffusion nodes. Every module here is imported by the registry;
each `Node` subclass defined in one is a node type."""
