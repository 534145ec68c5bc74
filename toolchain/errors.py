"""One error type for everything a user can fix: what went wrong, where, and what to do."""


class ToolchainError(Exception):
    """An error with a location (file, line, value) and the fix, printed without a traceback."""

    def __init__(self, what: str, *, where: str = "", fix: str = ""):
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class RecipeError(ToolchainError):
    """A recipe or patch directory that does not match the schema."""


class FetchError(ToolchainError):
    """No location could deliver a file with the pinned sha256."""


class UnpackError(ToolchainError):
    """An archive that is unsafe or broken."""


class PatchError(ToolchainError):
    """A patch that does not apply."""
