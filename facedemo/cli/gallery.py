"""Sub-commands added by a later issue."""


def register(sub) -> None:
    pass
