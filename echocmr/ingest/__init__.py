"""Ingestion: any echo file in, a de-identified 112×112 ``Clip`` out (see docs/INGEST.md).

Public API: ``read_clip``, ``read_study`` / ``StudyItem``, ``deidentify_dataset``, ``pseudonym``;
``read_clip_isolated`` / ``read_study_isolated`` decode in a resource-limited worker process.
Every refusal is an ``InputError`` whose ``code`` is one of ``ERROR_CODES``.
"""

from .deid import deidentify_dataset, pseudonym, pseudonymous_uid
from .isolated import IsolatedDecoder, read_clip_isolated, read_study_isolated
from .pipeline import StudyItem, read_clip, read_study

# Stable InputError codes raised by this package.
ERROR_CODES = (
    "unreadable", "empty_file", "too_large", "unknown_format", "unsupported_container", "is_archive",
    "bad_header", "deflated_syntax", "unsupported_syntax", "dicomdir", "not_ultrasound",
    "bad_dimensions", "dimensions_too_large", "bad_frame_count", "too_many_frames",
    "unsupported_bit_depth", "unsupported_photometric", "decoded_too_large", "truncated_file", "no_pixels",
    "truncated_pixels", "frame_count_mismatch", "corrupt_frame", "corrupt_image", "corrupt_video",
    "truncated_video", "no_sector", "bad_argument", "too_many_items",
    "bad_zip", "zip_empty", "zip_too_many_entries", "zip_too_large", "zip_bomb", "zip_unsafe_path",
    "zip_symlink", "zip_encrypted", "zip_duplicate", "zip_nested", "zip_dicomdir", "zip_overlap",
    # Isolated decoding (ingest.isolated): the worker died, ran out of memory or time, or failed.
    "decoder_crashed", "decoder_memory", "decoder_timeout", "decoder_failed",
)

__all__ = ["read_clip", "read_study", "StudyItem", "read_clip_isolated", "read_study_isolated", "IsolatedDecoder",
           "deidentify_dataset", "pseudonym", "pseudonymous_uid", "ERROR_CODES"]
