"""Helpers for the project's own tests (never imported by harness/ or mockstack/)."""
