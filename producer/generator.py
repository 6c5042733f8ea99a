"""Random but realistic tickets, built from the contract and the French texts.

The producer's hot path (`TicketGenerator.batch`) assembles each Kafka value from
pre-encoded JSON fragments instead of calling json.dumps on a dict: the request texts
are pre-rendered per template in two halves (so their variety is exactly that of the
templates: every template and slot value is equally likely), ticket ids come from
os.urandom in bulk, and created_at is formatted once per millisecond. The bytes are
the same as `encode(ticket)` of the equivalent dict (tests/producer checks it).
"""

from __future__ import annotations

import binascii
import json
import os
import random
import string
import time
import weakref
from datetime import datetime
from functools import cache, lru_cache
from itertools import product
from math import lcm

from core.contract import Priority, TicketType
from producer.texts import SLOTS, TEMPLATES

__all__ = ["TicketGenerator", "encode", "ticket_id_of"]

# Incidents are the most common ticket, questions the least.
_TYPE_WEIGHTS = {TicketType.INCIDENT: 5, TicketType.DEMANDE: 3, TicketType.QUESTION: 2}
_PRIORITY_WEIGHTS = {Priority.LOW: 3, Priority.MEDIUM: 5, Priority.HIGH: 2}
_PRIORITY_TOTAL = sum(_PRIORITY_WEIGHTS.values())

# "ma commande n°{numero}": a number drawn per ticket, five digits.
_NUMERO_LOW, _NUMERO_COUNT = 10000, 90000  # 10000 to 99999
_NUMERO_MARK = b"\x00"  # never in a JSON string: json.dumps escapes it as \u0000

# Every value starts with the ticket id, so it can be read back without parsing JSON.
_HEAD_PREFIX = b'{"ticket_id":"'
_ID_START, _ID_END = len(_HEAD_PREFIX), len(_HEAD_PREFIX) + 36
_HEAD_TEMPLATE = _HEAD_PREFIX + b"xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" + b'","client_id":"'
_HEAD_LEN = len(_HEAD_TEMPLATE)
# Offsets in the UUID of its 30 random hex digits, and of the variant digit (8, 9, a or b).
_RANDOM_DIGITS = [i for i, c in enumerate(b"xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx") if c == ord("x")]
_VARIANT_DIGIT = 19
_VARIANT = bytes.maketrans(b"0123456789abcdef", b"89ab" * 4)
_IDS_PER_REFILL = 2048
# At most this many renderings per half of a template (they are all kept in memory).
_MAX_HALF = 4096


class TicketGenerator:
    """Generates tickets for a bounded population of clients, so that clients recur.

    `seed` makes the sequence of clients, types, priorities and texts reproducible;
    ticket ids stay random UUID4s (from os.urandom), so several generators never collide.
    """

    def __init__(self, clients: int = 5000, seed: int | None = None) -> None:
        if clients < 1:
            raise ValueError("clients must be >= 1")
        self._random = random.Random(seed)
        self._keys = [b"CLI-%06d" % n for n in range(1, clients + 1)]
        self._forms = _forms()
        radix = len(self._forms) * max(f[0] * f[2] for f in self._forms) * _PRIORITY_TOTAL * clients
        radix *= _NUMERO_COUNT
        # 64 bits more than the product of all the choices: the modulo bias is < 2**-64.
        self._bits = radix.bit_length() + 64
        # Value heads with fresh ticket ids, made in bulk; a forked child drops its copy.
        self._heads: list[bytes] = []
        _GENERATORS.add(self)
        self._millisecond = -1
        self._stamp = b""

    def ticket(self, now: datetime | None = None) -> dict[str, str]:
        """One ticket as a JSON-ready dict; created_at is now (UTC, milliseconds)."""
        created_at = None if now is None else now.isoformat(timespec="milliseconds")
        return json.loads(self._values(1, created_at)[0][1])

    def batch(self, count: int) -> list[tuple[bytes, bytes]]:
        """`count` tickets as (key, value) pairs, each created_at the time it was made."""
        return self._values(count, None)

    def _values(self, count: int, created_at: str | None) -> list[tuple[bytes, bytes]]:
        getrandbits, bits = self._random.getrandbits, self._bits
        forms, n_forms = self._forms, len(self._forms)
        keys, n_keys = self._keys, len(self._keys)
        heads = self._heads
        pop = heads.pop
        millisecond, stamp = self._millisecond, self._stamp
        if created_at is not None:
            stamp = _stamp(created_at)
        clock = time.time_ns
        join = b"".join
        out: list[tuple[bytes, bytes]] = []
        append = out.append
        for _ in range(count):
            r = getrandbits(bits)
            r, f = divmod(r, n_forms)
            n_first, firsts, n_seconds, seconds, tails, numero = forms[f]
            r, i = divmod(r, n_first)
            r, j = divmod(r, n_seconds)
            r, p = divmod(r, _PRIORITY_TOTAL)
            r, c = divmod(r, n_keys)
            if created_at is None:
                ms = clock() // 1_000_000
                if ms != millisecond:
                    millisecond = ms
                    stamp = _stamp_at(ms)
            try:
                head = pop()
            except IndexError:
                heads.extend(_heads(_IDS_PER_REFILL))
                head = pop()
            key = keys[c]
            value = join((head, key, stamp, firsts[i], seconds[j], tails[p]))
            if numero:
                value = value.replace(_NUMERO_MARK, b"%d" % (_NUMERO_LOW + r % _NUMERO_COUNT))
            append((key, value))
        if created_at is None:
            self._millisecond, self._stamp = millisecond, stamp
        return out


def encode(ticket: dict[str, str]) -> bytes:
    """The ticket as the UTF-8 JSON value written to Kafka."""
    return json.dumps(ticket, ensure_ascii=False, separators=(",", ":")).encode()


def ticket_id_of(value: bytes) -> str:
    """The ticket_id of a value made by TicketGenerator (or by encode of a ticket dict)."""
    if value[_ID_END : _ID_END + 1] == b'"' and value.startswith(_HEAD_PREFIX):
        return value[_ID_START:_ID_END].decode()
    return json.loads(value)["ticket_id"]


def _stamp(created_at: str) -> bytes:
    """The JSON between the client id and the request text, for one created_at."""
    return b'","created_at":"' + created_at.encode() + b'","request":"'


def _stamp_at(millisecond: int) -> bytes:
    """_stamp of what datetime.now(UTC).isoformat(timespec="milliseconds") writes at
    `millisecond` since the epoch, e.g. 2026-11-28T10:45:59.123+00:00."""
    seconds, milli = divmod(millisecond, 1000)
    return _stamp(f"{_utc_second(seconds)}.{milli:03d}+00:00")


@lru_cache(maxsize=4)
def _utc_second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def _heads(count: int) -> list[bytes]:
    """`count` value heads `{"ticket_id":"<random uuid4>","client_id":"`, from os.urandom."""
    digits = binascii.hexlify(os.urandom(16 * count))  # 32 random hex digits per id
    buffer = bytearray(_HEAD_TEMPLATE * count)
    for k, offset in enumerate(_RANDOM_DIGITS):
        buffer[_ID_START + offset :: _HEAD_LEN] = digits[k::32]
    buffer[_ID_START + _VARIANT_DIGIT :: _HEAD_LEN] = digits[30::32].translate(_VARIANT)
    data = bytes(buffer)
    return [data[i : i + _HEAD_LEN] for i in range(0, len(data), _HEAD_LEN)]


_GENERATORS: weakref.WeakSet[TicketGenerator] = weakref.WeakSet()


def _forget_ids_after_fork() -> None:
    for generator in list(_GENERATORS):
        generator._heads.clear()


os.register_at_fork(after_in_child=_forget_ids_after_fork)


@cache
def _forms() -> list[tuple]:
    """One entry per (type, template), repeated by weight so that a uniform pick is right.

    An entry is (n_first, firsts, n_seconds, seconds, tails, has_numero): the request
    text is firsts[i] + seconds[j] (JSON-escaped UTF-8), and tails[p] ends the value
    with the type and a priority (_PRIORITY_TOTAL entries, repeated by priority weight).
    """
    priorities = [p for p, w in _PRIORITY_WEIGHTS.items() for _ in range(w)]
    per_type = {t: len(TEMPLATES[t]) for t in _TYPE_WEIGHTS}
    # Each type's weight, spread evenly on its templates with integer repeats.
    scale = lcm(*per_type.values())
    forms = []
    for ticket_type, weight in _TYPE_WEIGHTS.items():
        tails = tuple(f'","type":"{ticket_type.value}","priority":"{p.value}"}}'.encode() for p in priorities)
        for template in TEMPLATES[ticket_type]:
            firsts, seconds = _halves(template)
            has_numero = any(_NUMERO_MARK in s for s in firsts + seconds)
            form = (len(firsts), firsts, len(seconds), seconds, tails, has_numero)
            forms.extend([form] * (weight * scale // per_type[ticket_type]))
    return forms


def _halves(template: str) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """Every rendering of `template` as (first halves, second halves), JSON-escaped.

    Each half lists one rendering per combination of its slots' values (duplicates
    kept), so a uniform pick in each is the original draw: every slot uniform and
    independent. The text is stripped and capitalized as a whole, which only touches
    its ends: the first half takes the start, the second half the end.
    """
    pieces = list(string.Formatter().parse(template))
    slots = [name for _, name, spec, conversion in pieces if name is not None]
    if any(spec or conversion for _, name, spec, conversion in pieces if name is not None):
        raise ValueError(f"format specs are not supported in {template!r}")
    if not slots:
        return (_json(_capitalized(template.format().strip())),), (b"",)
    # Cut after the k-th slot (k >= 1) where the two halves' sizes are most even.
    cut = min(range(1, len(slots) + 1), key=lambda k: max(_size(slots[:k]), _size(slots[k:])))
    at = [i for i, (_, name, _, _) in enumerate(pieces) if name is not None][cut - 1] + 1
    left, right = pieces[:at], pieces[at:]
    firsts = [_capitalized(_raw(left, values).lstrip()) for values in _choices(left)]
    seconds = [_raw(right, values).rstrip() for values in _choices(right)]
    # lstrip/rstrip of a half equals strip of the whole only if they do not cross the cut.
    if not all(firsts):
        raise ValueError(f"a first half of {template!r} is blank")
    if not all(seconds) and any(_raw(left, v)[-1:].isspace() for v in _choices(left)):
        raise ValueError(f"a blank second half of {template!r} follows a space")
    if len(firsts) > _MAX_HALF or len(seconds) > _MAX_HALF:
        raise ValueError(f"too many renderings of {template!r}")
    return tuple(_json(s) for s in firsts), tuple(_json(s) for s in seconds)


def _size(slots: list[str]) -> int:
    size = 1
    for slot in slots:
        size *= len(SLOTS[slot])
    return size


def _choices(pieces: list[tuple]) -> list[tuple[str, ...]]:
    """Every combination of the values of the slots in `pieces`, in a fixed order."""
    return list(product(*(_values(name) for _, name, _, _ in pieces if name is not None)))


def _values(slot: str) -> tuple[str, ...]:
    numero = _NUMERO_MARK.decode()
    return tuple(v.format(numero=numero) if slot == "objet" else v for v in SLOTS[slot])


def _raw(pieces: list[tuple], values: tuple[str, ...]) -> str:
    """The text of `pieces` (literal, slot...) with the slots' values, before strip."""
    out, remaining = [], iter(values)
    for literal, name, _, _ in pieces:
        out.append(literal)
        if name is not None:
            out.append(next(remaining))
    return "".join(out)


def _capitalized(text: str) -> str:
    return text[0].upper() + text[1:] if text else text


def _json(text: str) -> bytes:
    return json.dumps(text, ensure_ascii=False)[1:-1].encode().replace(b"\\u0000", _NUMERO_MARK)
