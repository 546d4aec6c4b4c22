"""Record model: Arrow schemas, column-name constants and the curate.toml config model."""
