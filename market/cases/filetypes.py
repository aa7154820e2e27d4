"""What a disclosure document may be, judged by its bytes rather than its name.

A file named report.pdf that is really a PNG is refused: buyers download these files, and
a name that lies about the content is how malicious files get opened in the wrong program.
The allow-list is data; `identify` returns the entry whose signature the bytes carry.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import PurePosixPath, PureWindowsPath

import msgspec

from market.errors import Invalid


class FileType(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # shown in messages: the format's own name, the same in every language
    content_type: str  # what downloads are served as
    extensions: tuple[str, ...]


PDF = FileType(name="PDF", content_type="application/pdf", extensions=(".pdf",))
PNG = FileType(name="PNG", content_type="image/png", extensions=(".png",))
JPEG = FileType(name="JPEG", content_type="image/jpeg", extensions=(".jpg", ".jpeg"))
DOCX = FileType(
    name="Word (DOCX)",
    content_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    extensions=(".docx",),
)
XLSX = FileType(
    name="Excel (XLSX)",
    content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    extensions=(".xlsx",),
)
TEXT_UTF8 = FileType(
    name="TXT", content_type="text/plain; charset=utf-8", extensions=(".txt", ".csv")
)
# Chinese Windows saves plain text as GB18030 (GBK); served with its charset it reads right.
TEXT_GB18030 = FileType(
    name="TXT", content_type="text/plain; charset=gb18030", extensions=(".txt", ".csv")
)
ALLOWED: tuple[FileType, ...] = (PDF, PNG, JPEG, DOCX, XLSX, TEXT_UTF8, TEXT_GB18030)

# OOXML packages name their main part's type in [Content_Types].xml (ECMA-376 Part 2 §10.1.2).
_OOXML_MAIN = {
    b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": DOCX,
    b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": XLSX,
}
# A real [Content_Types].xml is a few kB; a larger one is not worth inflating (zip bomb).
_MAX_CONTENT_TYPES_XML = 1024 * 1024
# Text may hold tabs, line breaks and form feeds; other C0 controls mean binary data.
_TEXT_CONTROLS = frozenset(range(32)) - {9, 10, 12, 13}


def _ooxml(content: bytes) -> FileType | None:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            info = archive.getinfo("[Content_Types].xml")
            if info.file_size > _MAX_CONTENT_TYPES_XML:
                return None
            types = archive.read(info)
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError, ValueError, EOFError):
        return None
    for marker, kind in _OOXML_MAIN.items():
        if marker in types:
            return kind
    return None


def _text(content: bytes) -> FileType | None:
    if any(b in _TEXT_CONTROLS for b in content[:65536]) or b"\x00" in content:
        return None
    for encoding, kind in (("utf-8-sig", TEXT_UTF8), ("gb18030", TEXT_GB18030)):
        try:
            content.decode(encoding)
        except UnicodeDecodeError:
            continue
        return kind
    return None


def identify(content: bytes) -> FileType | None:
    """The allowed type these bytes are, or None (signatures: ISO 32000 `%PDF-`, PNG's
    8-byte signature, JPEG SOI + marker, OOXML = ZIP with the right main part, text)."""
    if content.startswith(b"%PDF-"):
        return PDF
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if content.startswith(b"\xff\xd8\xff"):
        return JPEG
    if content.startswith(b"PK\x03\x04"):
        return _ooxml(content)
    return _text(content)


def clean_filename(raw: str) -> str:
    """The last path component of what the browser sent, trimmed to 200 characters."""
    name = PureWindowsPath(PurePosixPath(raw.strip()).name).name.strip()
    name = "".join(c for c in name if c.isprintable())
    if len(name) > 200:
        suffix = PurePosixPath(name).suffix[:20]
        name = name[: 200 - len(suffix)] + suffix
    return name


def check(filename: str, content: bytes, *, max_bytes: int) -> tuple[str, FileType]:
    """(clean file name, type) of an acceptable document, else Invalid on the field `file`."""
    name = clean_filename(filename)
    if not name:
        raise Invalid("file_unnamed", field="file")
    if not content:
        raise Invalid("file_empty", field="file")
    if len(content) > max_bytes:
        raise Invalid(
            "file_too_large",
            field="file",
            size_bytes=len(content),
            max_bytes=max_bytes,
            max_mb=max_bytes // (1024 * 1024),
        )
    kind = identify(content)
    if kind is None:
        allowed = sorted({e for t in ALLOWED for e in t.extensions})
        raise Invalid("file_type_not_accepted", field="file", allowed=allowed)
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in kind.extensions:
        if not suffix:
            raise Invalid(
                "file_extension_missing", field="file", kind=kind.name, expected=kind.extensions[0]
            )
        raise Invalid(
            "file_extension_mismatch",
            field="file",
            kind=kind.name,
            suffix=suffix,
            expected=kind.extensions[0],
        )
    return name, kind


def media_and_charset(content_type: str) -> tuple[str, str]:
    """(media type, charset) of a stored content type such as `text/plain; charset=gb18030`.
    A response is given the two apart: Litestar writes the charset of a `text/` type
    itself, and given the whole it would write it twice (docs/rules.md §Security)."""
    media, _, params = content_type.partition(";")
    charset = "utf-8"
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip('"')
    return media.strip(), charset
