"""The project's exception types.

Messages must never carry patient information: they describe *what* is wrong with an input
(sizes, tags, syntaxes), never the input's name or contents.
"""


class EchoCMRError(Exception):
    """Base class for every error the project raises on purpose."""


class InputError(EchoCMRError):
    """An input file (DICOM, video, image, archive) was rejected.

    ``code`` is a short stable identifier (e.g. ``"not_dicom"``, ``"too_large"``) that tests and
    the dashboard can rely on; the message is for humans.
    """

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code

    def __str__(self) -> str:  # "[code] message" reads well in CLI output and logs
        return f"[{self.code}] {self.args[0]}"


class CheckpointError(EchoCMRError):
    """A checkpoint or model bundle is missing, malformed, tampered with or incompatible.

    ``code`` is stable (``echocmr.checkpoint.CHECKPOINT_ERROR_CODES``) where the refusal comes from
    the checkpoint reader, ``"invalid"`` otherwise.
    """

    def __init__(self, message: str, code: str = "invalid"):
        super().__init__(message)
        self.code = code


class ConfigError(EchoCMRError):
    """A configuration value is invalid."""


class TrainingDiverged(EchoCMRError):
    """The loss became non-finite; the run stops and ``best`` is left untouched."""


class EvaluationError(EchoCMRError, ValueError):
    """Predictions or labels given to the evaluation do not have the expected layout."""


class RunStateError(EchoCMRError):
    """A training run or job cannot do what was asked in its present state (e.g. resume a running run)."""
