"""The errors a user can cause, each with a sentence a person understands.

Every public entry point (CLI, dashboard, API) catches ``FaceDemoError`` and shows ``str(error)``;
anything else is a bug and may show a traceback.
"""


class FaceDemoError(Exception):
    """Base class: the message is meant to be read by the user as it is."""


class ImageError(FaceDemoError):
    """The input is not an image we can read, or is too large to decode safely."""


class NoFaceError(FaceDemoError):
    """An image holds no face where one was needed."""


class TooManyFacesError(FaceDemoError):
    """An image holds several faces where exactly one was needed."""


class ModelUnavailableError(FaceDemoError):
    """A model's weights or libraries are missing; the message says how to provide them."""


class UnknownModelError(FaceDemoError):
    """A model name that is not in the registry."""


class InvalidNameError(FaceDemoError):
    """A person's name that cannot be stored (empty, path tricks, control characters)."""


class UnknownPersonError(FaceDemoError):
    """A person who is not in the gallery."""


class GalleryError(FaceDemoError):
    """The gallery store cannot do what was asked (unreachable server, read-only, conflict)."""


class InvalidParameterError(FaceDemoError):
    """A number (threshold, top-k, face index) that is not a number or is outside its range."""


class ArchiveError(FaceDemoError):
    """An uploaded zip that cannot be imported at all (not a zip, no photos, too large)."""


class DataUnavailableError(FaceDemoError):
    """Data a feature needs is not on this machine (a dataset, photos of strangers, a calibration)."""


class TrainingError(FaceDemoError):
    """Fine-tuning cannot run on what it was given (too few people, photos missing, a model it cannot train)."""


class DeviceError(FaceDemoError):
    """The device asked for (a CUDA GPU) is not on this machine, or is not a device name."""


class ConfirmationNeeded(FaceDemoError):
    """An enrollment that may store the wrong person, asked about before anything is stored: the message is
    the question. Asked again with the answer (``confirm``, ``odd_photos``), it goes ahead."""


class LooksLikeSomeoneError(ConfirmationNeeded):
    """A face the gallery already names as another person, to be enrolled under a new or different name."""

    def __init__(self, message: str, matches: list[tuple[str, str, float]]):
        super().__init__(message)
        self.matches = matches  # (photo label, the person it looks like, distance)


class OddPhotosError(ConfirmationNeeded):
    """Photos enrolled under one name whose faces do not look like the others' (another person among them)."""

    def __init__(self, message: str, odd: list[str], several: bool):
        super().__init__(message)
        self.odd = odd  # the labels of the photos that do not fit
        self.several = several  # more than half of the photos do not fit: several people, not one stray photo
