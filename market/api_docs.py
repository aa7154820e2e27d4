"""What the OpenAPI document says of a request body beyond its schema: examples.

    data: Annotated[OpenCase, api_docs.body(OpenCase, {"loan_id": 1, …})]

Each example is checked against the body's type when the module is imported, so an
example the API would refuse cannot reach the document. An operation's summary is the
`summary=` of its route decorator, its description the handler's docstring
(tests/test_api_conventions.py checks every /api/ operation has all three).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.enums import RequestEncodingType
from litestar.openapi.spec import Example
from litestar.params import Body, BodyKwarg


def body(
    kind: Any, *examples: dict[str, Any], media_type: str = RequestEncodingType.JSON
) -> BodyKwarg:
    """A body of type `kind` (a struct, or a union of tagged structs) with these examples;
    each example of a JSON body must decode as `kind` (a multipart body's file part
    cannot be checked so: its example shows the file's name)."""
    for example in examples:
        if media_type == RequestEncodingType.JSON:
            msgspec.convert(example, kind)
    declared: BodyKwarg = Body(
        media_type=media_type,
        examples=[
            Example(summary=f"example {n}" if len(examples) > 1 else "example", value=value)
            for n, value in enumerate(examples, 1)
        ],
    )
    return declared
