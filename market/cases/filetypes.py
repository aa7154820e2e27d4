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
    name: str  # shown in messages
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
    name="text", content_type="text/plain; charset=utf-8", extensions=(".txt", ".csv")
)
# Chinese Windows saves plain text as GB18030 (GBK); served with its charset it reads right.
TEXT_GB18030 = FileType(
    name="text", content_type="text/plain; charset=gb18030", extensions=(".txt", ".csv")
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
    """(clean file name, type) of an acceptable document, else Invalid naming the file."""
    name = clean_filename(filename)
    if not name:
        raise Invalid("文件缺少文件名 / the file has no name", field="file")
    if not content:
        raise Invalid("文件为空 / the file is empty", field="file")
    if len(content) > max_bytes:
        raise Invalid(
            f"文件超过 {max_bytes // (1024 * 1024)} MB 上限 / the file is "
            f"{len(content):,} bytes; the limit is {max_bytes:,} bytes",
            field="file",
        )
    kind = identify(content)
    allowed = ", ".join(sorted({e for t in ALLOWED for e in t.extensions}))
    if kind is None:
        raise Invalid(
            f"不支持的文件类型，仅接受 {allowed} / the content is none of the accepted "
            f"types ({allowed})",
            field="file",
        )
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in kind.extensions:
        ends = f"ends in '{suffix}'" if suffix else "has no extension"
        raise Invalid(
            f"文件内容是 {kind.name}，与文件名后缀“{suffix or '（无）'}”不符 / the content is "
            f"{kind.name} but the name {ends}; name it *{kind.extensions[0]}",
            field="file",
        )
    return name, kind
