"""Errors that mean "what you gave us is wrong": the CLI prints them as one line and exits 2."""


class UsageError(Exception):
    pass
