"""Pieces shared by every mock service: structured logging, the HTTP base, the instrument universe."""
