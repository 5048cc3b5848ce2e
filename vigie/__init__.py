"""Entry points: the `vigie` command."""
