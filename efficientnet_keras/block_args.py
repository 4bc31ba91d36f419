"""Block-args strings: the compact stage descriptions used by the official EfficientNet code.

A stage of the network is one string, e.g. ``r2_k3_s1_e1_i24_o24_c1`` or ``r1_k3_s11_e1_i32_o16_se0.25``:

=========  =====================================================================
token      meaning
=========  =====================================================================
``r<n>``   repeats: how many blocks the stage has (before depth scaling)
``k<n>``   kernel size of the depthwise (MBConv) or full (Fused-MBConv) conv; absent for Transformer stages
``s<n>``   stride of the first block; one digit (``s2``) or two (``s22``)
``e<n>``   expansion ratio of the inverted bottleneck (Transformer: of the feed-forward network)
``i<n>``   input filters (before width scaling)
``o<n>``   output filters (before width scaling)
``se<f>``  optional squeeze-excite ratio in (0, 1], of the input filters (CoAtNet: ``Family.se_from``'s)
``h<n>``   optional attention head size of a Transformer stage (default 32, CoAtNet's)
``c<n>``   optional block type: 0 MBConv (default), 1 Fused-MBConv, 2 Transformer with relative attention
``noskip`` optional: no identity skip connection
=========  =====================================================================

CoAtNet's stages are such strings too: ``r2_k3_s2_e4_i64_o96_se0.25`` (MBConv) then ``r5_s2_e4_i192_o384_h32_c2``
(Transformer). ``encode(decode(s)) == s`` for every canonical string (tokens in the order above).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterable

__all__ = ["BlockArgs", "decode", "encode", "decode_all", "encode_all", "MBCONV", "FUSED_MBCONV", "TRANSFORMER",
           "BLOCK_TYPE_NAMES", "DEFAULT_HEAD_SIZE"]

MBCONV = 0
FUSED_MBCONV = 1
TRANSFORMER = 2
BLOCK_TYPE_NAMES = {MBCONV: "MBConv", FUSED_MBCONV: "Fused-MBConv", TRANSFORMER: "Transformer"}
DEFAULT_HEAD_SIZE = 32  # CoAtNet: "the head size is 32" for every model

_TOKEN = re.compile(r"^(se|noskip|[rkseiohc])(.*)$")
_REQUIRED = ("r", "s", "e", "i", "o")
_NAMES = {
    "r": "repeats",
    "k": "kernel size",
    "s": "stride",
    "e": "expand ratio",
    "i": "input filters",
    "o": "output filters",
    "se": "squeeze-excite ratio",
    "h": "head size",
    "c": "block type",
}


@dataclasses.dataclass(frozen=True)
class BlockArgs:
    """One stage of an EfficientNet or CoAtNet, decoded from a block-args string.

    ``strides`` keeps the spelling of the string: an int for ``s2``, a pair for ``s22``. Transformer stages have
    no kernel size (``None``) and a ``head_size``.
    """

    repeats: int
    kernel_size: int | None
    strides: int | tuple[int, int]
    expand_ratio: int
    input_filters: int
    output_filters: int
    se_ratio: float | None = None
    conv_type: int = MBCONV
    id_skip: bool = True
    head_size: int | None = None

    @property
    def stride(self) -> int:
        """The stride as one number (both spatial strides are equal in every EfficientNet)."""
        return self.strides if isinstance(self.strides, int) else self.strides[0]

    @property
    def fused(self) -> bool:
        return self.conv_type == FUSED_MBCONV

    @property
    def transformer(self) -> bool:
        return self.conv_type == TRANSFORMER


def _error(s: str, position: int, token: str, why: str) -> ValueError:
    return ValueError(f"Bad block-args string {s!r}: token {position} {token!r} {why}.")


def _positive_int(s: str, position: int, token: str, key: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise _error(s, position, token, f"must give the {_NAMES[key]} as a positive integer")
    return int(value)


def decode(s: str) -> BlockArgs:
    """Parse one block-args string; raise ValueError naming the bad token and its position."""
    if not isinstance(s, str) or not s.strip():
        raise ValueError(f"Bad block-args string {s!r}: it is empty; expected e.g. 'r1_k3_s1_e1_i32_o16_se0.25'.")
    fields: dict[str, object] = {}
    for position, token in enumerate(s.split("_"), start=1):
        match = _TOKEN.match(token)
        if not match:
            raise _error(s, position, token, "is unknown (expected one of r, k, s, e, i, o, se, h, c, noskip)")
        key, value = match.groups()
        if key in fields or (key == "noskip" and "noskip" in fields):
            raise _error(s, position, token, f"repeats the {_NAMES.get(key, key)} given earlier")
        fields[key] = _value(s, position, token, key, value)
    transformer = fields.get("c") == TRANSFORMER
    required = _REQUIRED if transformer else ("r", "k") + _REQUIRED[1:]
    missing = [k for k in required if k not in fields]
    if transformer:
        for key, why in (("k", "kernel size"), ("se", "squeeze-excite")):
            if key in fields:
                raise ValueError(f"Bad block-args string {s!r}: a Transformer stage (c2) has no {why}; remove "
                                 f"the '{key}' token.")
    elif "h" in fields:
        raise ValueError(f"Bad block-args string {s!r}: only Transformer stages (c2) have a head size; remove the "
                         "'h' token.")
    if missing:
        raise ValueError(
            f"Bad block-args string {s!r}: missing token(s) "
            + ", ".join(f"'{k}<{_NAMES[k]}>'" for k in missing)
            + "."
        )
    se = fields.get("se")
    return BlockArgs(
        repeats=fields["r"],
        kernel_size=fields.get("k"),
        strides=fields["s"],
        expand_ratio=fields["e"],
        input_filters=fields["i"],
        output_filters=fields["o"],
        se_ratio=_SeRatio(se) if se is not None else None,
        conv_type=fields.get("c", MBCONV),
        id_skip=not fields.get("noskip", False),
        head_size=fields.get("h", DEFAULT_HEAD_SIZE) if transformer else None,
    )


def _value(s: str, position: int, token: str, key: str, value: str):
    """The value of one token, checked for its key."""
    if key == "noskip":
        if value:
            raise _error(s, position, token, "is unknown (expected exactly 'noskip')")
        return True
    if key == "s":
        if not value.isdigit() or len(value) not in (1, 2) or any(c not in "12" for c in value):
            raise _error(s, position, token, "must give the stride as 1 or 2, or two such digits (s11, s22)")
        if len(value) == 2 and value[0] != value[1]:
            raise _error(s, position, token, "has different strides for height and width; EfficientNet needs equal ones")
        return int(value) if len(value) == 1 else (int(value[0]), int(value[1]))
    if key == "se":
        try:
            ratio = float(value)
        except ValueError:
            raise _error(s, position, token, "must give the squeeze-excite ratio as a number in (0, 1]") from None
        if not 0 < ratio <= 1:
            raise _error(s, position, token, "must give the squeeze-excite ratio as a number in (0, 1]")
        return value  # keep the spelling for exact round trips
    if key == "c":
        if value not in ("0", "1", "2"):
            raise _error(s, position, token,
                         "must give the block type as 0 (MBConv), 1 (Fused-MBConv) or 2 (Transformer)")
        return int(value)
    number = _positive_int(s, position, token, key, value)
    if key == "k" and number % 2 == 0:
        raise _error(s, position, token, "must give an odd kernel size")
    return number


class _SeRatio(float):
    """A float that remembers how it was written, so ``encode`` reproduces ``se0.25`` vs ``se.25``."""

    def __new__(cls, text: str):
        obj = super().__new__(cls, float(text))
        obj.text = text
        return obj

    def __repr__(self) -> str:
        return self.text


def encode(args: BlockArgs) -> str:
    """Write a BlockArgs back as a canonical block-args string."""
    if isinstance(args.strides, int):
        stride = f"s{args.strides}"
    else:
        stride = f"s{args.strides[0]}{args.strides[1]}"
    parts = [
        f"r{args.repeats}",
        *([f"k{args.kernel_size}"] if args.kernel_size is not None else []),
        stride,
        f"e{args.expand_ratio}",
        f"i{args.input_filters}",
        f"o{args.output_filters}",
    ]
    if args.se_ratio:
        parts.append(f"se{getattr(args.se_ratio, 'text', repr(float(args.se_ratio)))}")
    if args.head_size is not None:
        parts.append(f"h{args.head_size}")
    if args.conv_type != MBCONV:
        parts.append(f"c{args.conv_type}")
    if not args.id_skip:
        parts.append("noskip")
    return "_".join(parts)


def decode_all(strings: Iterable[str]) -> list[BlockArgs]:
    """Decode every stage of a network."""
    blocks = [decode(s) for s in strings]
    if not blocks:
        raise ValueError("A network needs at least one block-args string; got none.")
    return blocks


def encode_all(blocks: Iterable[BlockArgs]) -> list[str]:
    return [encode(b) for b in blocks]
