"""The base of every error rae reports to a user as one line (bad file, bad setting, unreachable model, ...)."""


class RaeError(Exception):
    pass
