"""Step definitions, grouped by what they talk about."""
