"""User-facing errors: one clear message that says what is wrong and what to do."""


class HistodistillError(Exception):
    """An error caused by the user's input (config, data files); its message says how to fix it."""
