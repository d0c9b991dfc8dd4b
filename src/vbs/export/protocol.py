"""The NBD wire protocol, server side: fixed newstyle handshake and transmission.

Written from the NBD protocol document (NetworkBlockDevice/nbd ``doc/proto.md``).
Everything is big-endian. What this module speaks:

==========================  ======  =================================================
message                     value   handling
==========================  ======  =================================================
handshake S->C              --      ``NBDMAGIC`` ``IHAVEOPT`` u16 flags
                                    (FIXED_NEWSTYLE 1, NO_ZEROES 2)
client flags C->S           --      u32; unknown bits end the connection
option C->S                 --      ``IHAVEOPT`` u32 option u32 length, data
option reply S->C           --      u64 0x3e889045565a9, u32 option, u32 type,
                                    u32 length, data
NBD_OPT_EXPORT_NAME         1       old way in: u64 size, u16 flags (+124 zero bytes)
NBD_OPT_ABORT               2       ACK, then close
NBD_OPT_LIST                3       ERR_POLICY: export names are secrets, never listed
NBD_OPT_STARTTLS            5       ERR_UNSUP: TLS is not offered (docs/operations.md)
NBD_OPT_INFO / NBD_OPT_GO   6 / 7   u32 name length, name, u16 n, n x u16 info;
                                    replies INFO EXPORT (0) and BLOCK_SIZE (3), then
                                    ACK; GO enters transmission; unknown name
                                    ERR_UNKNOWN
NBD_OPT_STRUCTURED_REPLY    8       ACK; replies are structured from then on
NBD_OPT_LIST_META_CONTEXT   9       offers ``base:allocation`` (context id 1)
NBD_OPT_SET_META_CONTEXT    10      selects it (needs structured replies)
any other option            --      ERR_UNSUP (e.g. EXTENDED_HEADERS 11)
request C->S                --      u32 0x25609513, u16 flags, u16 type, u64 cookie,
                                    u64 offset, u32 length (+ data for WRITE)
simple reply S->C           --      u32 0x67446698, u32 error, u64 cookie (+ data)
structured chunk S->C       --      u32 0x668e33ef, u16 flags (DONE 1), u16 type,
                                    u64 cookie, u32 length, payload
NBD_CMD_READ                0       OFFSET_DATA (1) chunk: u64 offset, data
NBD_CMD_WRITE               1       writable exports only, else EPERM
NBD_CMD_DISC                2       no reply; in-flight requests finish, then close
NBD_CMD_FLUSH               3       device flush (overlay + bitmap fsynced)
NBD_CMD_WRITE_ZEROES        6       writable exports only
NBD_CMD_BLOCK_STATUS        7       BLOCK_STATUS (5) chunk: u32 context id, then
                                    (u32 length, u32 flags) descriptors;
                                    HOLE 1 | ZERO 2 for zero chunks
any other command           --      EINVAL
errors                      --      EPERM 1, EIO 5, EINVAL 22, ENOSPC 28,
                                    ESHUTDOWN 108; ERROR chunk (0x8001) when
                                    structured
==========================  ======  =================================================

Requests on one connection are read in order by one thread; reads and block
status go to a small pool (replies may come back out of order, which the
protocol allows: the cookie pairs them), writes, zeroes and flushes run in the
reading thread in arrival order, so a flush covers every write replied before
it. ``alive()`` is asked before each request (at most once a second): an
export that was ended or expired loses its connections at the next request.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from vbs.errors import VbsError

__all__ = [
    "MAX_REQUEST",
    "BlockDevice",
    "Opener",
    "ProtocolError",
    "serve_connection",
]

log = logging.getLogger(__name__)

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
OPT_REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
STRUCTURED_REPLY_MAGIC = 0x668E33EF

FLAG_FIXED_NEWSTYLE = 1
FLAG_NO_ZEROES = 2

OPT_EXPORT_NAME = 1
OPT_ABORT = 2
OPT_LIST = 3
OPT_STARTTLS = 5
OPT_INFO = 6
OPT_GO = 7
OPT_STRUCTURED_REPLY = 8
OPT_LIST_META_CONTEXT = 9
OPT_SET_META_CONTEXT = 10

REP_ACK = 1
REP_INFO = 3
REP_META_CONTEXT = 4
REP_ERR_UNSUP = 2**31 + 1
REP_ERR_POLICY = 2**31 + 2
REP_ERR_INVALID = 2**31 + 3
REP_ERR_UNKNOWN = 2**31 + 6

INFO_EXPORT = 0
INFO_BLOCK_SIZE = 3

TFLAG_HAS_FLAGS = 1 << 0
TFLAG_READ_ONLY = 1 << 1
TFLAG_SEND_FLUSH = 1 << 2
TFLAG_SEND_WRITE_ZEROES = 1 << 6
TFLAG_SEND_DF = 1 << 7
TFLAG_CAN_MULTI_CONN = 1 << 8

CMD_READ = 0
CMD_WRITE = 1
CMD_DISC = 2
CMD_FLUSH = 3
CMD_WRITE_ZEROES = 6
CMD_BLOCK_STATUS = 7
CMD_FLAG_REQ_ONE = 1 << 3

REPLY_FLAG_DONE = 1
REPLY_TYPE_OFFSET_DATA = 1
REPLY_TYPE_BLOCK_STATUS = 5
REPLY_TYPE_ERROR = 2**15 + 1

EPERM = 1
EIO = 5
EINVAL = 22
ENOSPC = 28
ESHUTDOWN = 108

BASE_ALLOCATION = b"base:allocation"
CONTEXT_ID = 1
MAX_OPTION = 64 * 1024
MAX_REQUEST = 32 * 1024 * 1024
"""Largest read or write accepted (advertised as the maximum block size)."""
PREFERRED_BLOCK = 4096
MAX_EXTENTS = 1024
ALIVE_EVERY = 1.0

_REQUEST = struct.Struct(">IHHQQI")
_SIMPLE = struct.Struct(">IIQ")
_CHUNK = struct.Struct(">IHHQI")
_OPT = struct.Struct(">QII")
_OPT_REPLY = struct.Struct(">QIII")


class ProtocolError(VbsError):
    """The client broke the protocol; the connection is closed (never leaves
    :func:`serve_connection`)."""

    code = "export.protocol"


class BlockDevice(Protocol):
    """What an export serves. Implementations are thread-safe."""

    @property
    def size(self) -> int: ...

    @property
    def writable(self) -> bool: ...

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (in range); raises VbsError or OSError."""
        ...

    def write(self, offset: int, data: bytes) -> None:
        """Store ``data`` at ``offset``; only called when ``writable``."""
        ...

    def flush(self) -> None:
        """Make every completed write durable."""
        ...

    def extents(self, offset: int, length: int) -> list[tuple[int, bool]]:
        """(length, is_zero) runs covering [offset, offset+length), in order."""
        ...


class Opener(Protocol):
    """Names -> devices. ``open`` returns None for an unknown or expired name;
    ``alive`` says whether a name may still be served."""

    def open(self, name: str) -> BlockDevice | None: ...

    def alive(self, name: str) -> bool: ...

    def release(self, name: str) -> None: ...


def _recv(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        part = sock.recv(min(n - len(buf), 1 << 20))
        if not part:
            raise ProtocolError("client closed the connection")
        buf += part
    return bytes(buf)


class _Conn:
    def __init__(self, sock: socket.socket, opener: Opener, workers: int) -> None:
        self.sock = sock
        self.opener = opener
        self.workers = workers
        self.structured = False
        self.meta = False
        self.no_zeroes = False
        self.send_lock = threading.Lock()

    # -- handshake --------------------------------------------------------------
    def send(self, *parts: bytes) -> None:
        with self.send_lock:
            self.sock.sendall(b"".join(parts))

    def opt_reply(self, option: int, rtype: int, data: bytes = b"") -> None:
        self.send(_OPT_REPLY.pack(OPT_REPLY_MAGIC, option, rtype, len(data)), data)

    def handshake(self) -> tuple[str, BlockDevice] | None:
        self.send(struct.pack(">QQH", NBDMAGIC, IHAVEOPT, FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES))
        (cflags,) = struct.unpack(">I", _recv(self.sock, 4))
        if cflags & ~(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES):
            raise ProtocolError(f"unknown client flags {cflags:#x}")
        self.no_zeroes = bool(cflags & FLAG_NO_ZEROES)
        while True:
            magic, option, length = _OPT.unpack(_recv(self.sock, _OPT.size))
            if magic != IHAVEOPT:
                raise ProtocolError("bad option magic")
            if length > MAX_OPTION:
                raise ProtocolError(f"option {option} of {length} bytes is too long")
            data = _recv(self.sock, length)
            if option == OPT_EXPORT_NAME:
                name = data.decode("utf-8", "replace")
                dev = self.opener.open(name)
                if dev is None:
                    return None  # the old-style option has no way to say no
                self.send(struct.pack(">QH", dev.size, self.tflags(dev)),
                          b"" if self.no_zeroes else bytes(124))
                return name, dev
            if option == OPT_ABORT:
                self.opt_reply(option, REP_ACK)
                return None
            if option in (OPT_INFO, OPT_GO):
                got = self.info_or_go(option, data)
                if got is not None:
                    return got
            elif option == OPT_STRUCTURED_REPLY:
                if data:
                    self.opt_reply(option, REP_ERR_INVALID)
                else:
                    self.structured = True
                    self.opt_reply(option, REP_ACK)
            elif option in (OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT):
                self.meta_context(option, data)
            elif option == OPT_LIST:
                self.opt_reply(option, REP_ERR_POLICY, b"export names are not listed")
            else:
                self.opt_reply(option, REP_ERR_UNSUP)

    def tflags(self, dev: BlockDevice) -> int:
        flags = TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH | TFLAG_CAN_MULTI_CONN
        if self.structured:
            flags |= TFLAG_SEND_DF  # a read is always answered in one chunk
        if dev.writable:
            flags |= TFLAG_SEND_WRITE_ZEROES
        else:
            flags |= TFLAG_READ_ONLY
        return flags

    def info_or_go(self, option: int, data: bytes) -> tuple[str, BlockDevice] | None:
        parsed = _name_and_rest(data)
        if parsed is None or len(parsed[1]) < 2:
            self.opt_reply(option, REP_ERR_INVALID, b"malformed request")
            return None
        name, rest = parsed
        (n,) = struct.unpack(">H", rest[:2])
        if len(rest) != 2 + 2 * n:
            self.opt_reply(option, REP_ERR_INVALID, b"malformed information requests")
            return None
        dev = self.opener.open(name)
        if dev is None:
            self.opt_reply(option, REP_ERR_UNKNOWN, b"no such export")
            return None
        self.opt_reply(option, REP_INFO, struct.pack(">HQH", INFO_EXPORT, dev.size,
                                                     self.tflags(dev)))
        self.opt_reply(option, REP_INFO, struct.pack(">HIII", INFO_BLOCK_SIZE, 1,
                                                     PREFERRED_BLOCK, MAX_REQUEST))
        self.opt_reply(option, REP_ACK)
        if option == OPT_GO:
            return name, dev
        self.opener.release(name)
        return None

    def meta_context(self, option: int, data: bytes) -> None:
        parsed = _name_and_rest(data)
        if parsed is None or len(parsed[1]) < 4:
            self.opt_reply(option, REP_ERR_INVALID, b"malformed request")
            return
        if option == OPT_SET_META_CONTEXT and not self.structured:
            self.opt_reply(option, REP_ERR_INVALID, b"structured replies first")
            return
        _name, rest = parsed
        (n,) = struct.unpack(">I", rest[:4])
        pos, queries = 4, []
        for _ in range(n):
            if pos + 4 > len(rest):
                self.opt_reply(option, REP_ERR_INVALID, b"malformed queries")
                return
            (qlen,) = struct.unpack(">I", rest[pos : pos + 4])
            queries.append(rest[pos + 4 : pos + 4 + qlen])
            pos += 4 + qlen
        if pos != len(rest):
            self.opt_reply(option, REP_ERR_INVALID, b"malformed queries")
            return
        listing = option == OPT_LIST_META_CONTEXT
        offer = any(q == BASE_ALLOCATION or (listing and q in (b"base:", b"")) for q in queries)
        if listing and n == 0:
            offer = True
        if option == OPT_SET_META_CONTEXT:
            self.meta = offer
        if offer:
            self.opt_reply(option, REP_META_CONTEXT,
                           struct.pack(">I", CONTEXT_ID) + BASE_ALLOCATION)
        self.opt_reply(option, REP_ACK)

    # -- transmission -------------------------------------------------------------
    def reply_error(self, cookie: int, err: int, message: str = "") -> None:
        if self.structured:
            msg = message.encode()[:4096]
            payload = struct.pack(">IH", err, len(msg)) + msg
            self.send(_CHUNK.pack(STRUCTURED_REPLY_MAGIC, REPLY_FLAG_DONE, REPLY_TYPE_ERROR,
                                  cookie, len(payload)), payload)
        else:
            self.send(_SIMPLE.pack(SIMPLE_REPLY_MAGIC, err, cookie))

    def reply_ok(self, cookie: int) -> None:
        if self.structured:
            self.send(_CHUNK.pack(STRUCTURED_REPLY_MAGIC, REPLY_FLAG_DONE, 0, cookie, 0))
        else:
            self.send(_SIMPLE.pack(SIMPLE_REPLY_MAGIC, 0, cookie))

    def do_read(self, dev: BlockDevice, cookie: int, offset: int, length: int) -> None:
        try:
            data = dev.read(offset, length)
        except (VbsError, OSError) as exc:
            log.error("NBD read at %d+%d failed: %s", offset, length, exc)
            self.reply_error(cookie, EIO, "read failed")
            return
        except Exception:  # noqa: BLE001 - a reply is owed whatever went wrong
            log.exception("NBD read at %d+%d failed", offset, length)
            self.reply_error(cookie, EIO, "read failed")
            return
        if self.structured:
            self.send(_CHUNK.pack(STRUCTURED_REPLY_MAGIC, REPLY_FLAG_DONE,
                                  REPLY_TYPE_OFFSET_DATA, cookie, 8 + len(data)),
                      struct.pack(">Q", offset), data)
        else:
            self.send(_SIMPLE.pack(SIMPLE_REPLY_MAGIC, 0, cookie), data)

    def do_block_status(self, dev: BlockDevice, cookie: int, flags: int, offset: int,
                        length: int) -> None:
        try:
            runs = dev.extents(offset, length)
        except Exception as exc:  # noqa: BLE001 - a reply is owed whatever went wrong
            log.error("NBD block status at %d+%d failed: %s", offset, length, exc)
            self.reply_error(cookie, EIO, "block status failed")
            return
        limit = 1 if flags & CMD_FLAG_REQ_ONE else MAX_EXTENTS
        desc = b"".join(struct.pack(">II", n, 3 if zero else 0) for n, zero in runs[:limit])
        payload = struct.pack(">I", CONTEXT_ID) + desc
        self.send(_CHUNK.pack(STRUCTURED_REPLY_MAGIC, REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS,
                              cookie, len(payload)), payload)

    def transmit(self, name: str, dev: BlockDevice) -> None:
        checked = time.monotonic()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="vbs-nbd") as pool:
            while True:
                hdr = _recv(self.sock, _REQUEST.size)
                magic, flags, ctype, cookie, offset, length = _REQUEST.unpack(hdr)
                if magic != REQUEST_MAGIC:
                    raise ProtocolError("bad request magic")
                if ctype == CMD_DISC:
                    return
                payload = b""
                if ctype == CMD_WRITE:
                    if length > MAX_REQUEST:
                        raise ProtocolError(f"write of {length} bytes is too large")
                    payload = _recv(self.sock, length)
                if time.monotonic() - checked >= ALIVE_EVERY:
                    if not self.opener.alive(name):
                        log.info("NBD export ended or expired; closing its connection")
                        return
                    checked = time.monotonic()
                in_range = offset + length <= dev.size
                if ctype == CMD_READ:
                    if not in_range or length > MAX_REQUEST:
                        self.reply_error(cookie, EINVAL, "out of range")
                    else:
                        pool.submit(self.do_read, dev, cookie, offset, length)
                elif ctype == CMD_BLOCK_STATUS:
                    if not in_range or length == 0:
                        self.reply_error(cookie, EINVAL, "out of range")
                    elif not (self.structured and self.meta):
                        self.reply_error(cookie, EINVAL, "no meta context negotiated")
                    else:
                        pool.submit(self.do_block_status, dev, cookie, flags, offset, length)
                elif ctype in (CMD_WRITE, CMD_WRITE_ZEROES):
                    if not dev.writable:
                        self.reply_error(cookie, EPERM, "read-only export")
                    elif not in_range:
                        self.reply_error(cookie, ENOSPC, "out of range")
                    else:
                        try:
                            dev.write(offset, payload if ctype == CMD_WRITE else bytes(length))
                            self.reply_ok(cookie)
                        except (VbsError, OSError) as exc:
                            log.error("NBD write at %d+%d failed: %s", offset, length, exc)
                            self.reply_error(cookie, EIO, "write failed")
                elif ctype == CMD_FLUSH:
                    try:
                        dev.flush()
                        self.reply_ok(cookie)
                    except OSError as exc:
                        log.error("NBD flush failed: %s", exc)
                        self.reply_error(cookie, EIO, "flush failed")
                else:
                    self.reply_error(cookie, EINVAL, "command not supported")


def _name_and_rest(data: bytes) -> tuple[str, bytes] | None:
    if len(data) < 4:
        return None
    (n,) = struct.unpack(">I", data[:4])
    if 4 + n > len(data):
        return None
    return data[4 : 4 + n].decode("utf-8", "replace"), data[4 + n :]


def serve_connection(sock: socket.socket, opener: Opener, *, workers: int = 4,
                     on_open: Callable[[str], None] | None = None) -> None:
    """Run one client connection to its end; never raises for client mistakes."""
    conn = _Conn(sock, opener, workers)
    name: str | None = None
    try:
        got = conn.handshake()
        if got is None:
            return
        name, dev = got
        if on_open is not None:
            on_open(name)
        conn.transmit(name, dev)
    except (ProtocolError, OSError) as exc:
        log.debug("NBD connection ended: %s", exc)
    finally:
        if name is not None:
            opener.release(name)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
