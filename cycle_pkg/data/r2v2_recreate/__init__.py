"""R2V2 re-created from its published id lists (the tarballs it was published as are gone): each
listed YouTube video fetched with yt-dlp (``fetch``), exactly its listed frames decoded with PyAV,
cut free of black borders and resized as the dataset's authors did (``frames``), committed into the
published layout video by video so that a stopped run resumes (``ledger``), many videos at once
with a coverage report at the end (``recreate``)."""

from .recreate import Fetching, recreate

__all__ = ["Fetching", "recreate"]
