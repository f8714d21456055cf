"""The composition root, serving, backups and the CLI."""
