"""A large folder's SEARCH answer is one line of several megabytes; imaplib must take it."""

from __future__ import annotations

import socketserver

from tests.unit.loopback_imap import serving, session

FOLDER_SIZE = 300_000  # about 2.1 MB of UIDs in one line: over imaplib's own 1,000,000 bytes


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(b"* OK [CAPABILITY IMAP4rev1] ready\r\n")
        while line := self.rfile.readline():
            tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
            verb = rest.split(b" ", 1)[0].upper()
            if verb == b"CAPABILITY":
                out = b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n"
            elif verb == b"LOGIN":
                out = tag + b" OK logged in\r\n"
            elif verb == b"EXAMINE":
                out = (
                    f"* {FOLDER_SIZE} EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n".encode()
                    + tag
                    + b" OK [READ-ONLY] ok\r\n"
                )
            elif rest.upper().startswith(b"UID SEARCH"):
                uids = " ".join(str(u) for u in range(1, FOLDER_SIZE + 1)).encode()
                out = b"* SEARCH " + uids + b"\r\n" + tag + b" OK search done\r\n"
            elif verb == b"LOGOUT":
                self.wfile.write(b"* BYE bye\r\n" + tag + b" OK bye\r\n")
                return
            else:
                out = tag + b" BAD unknown command\r\n"
            self.wfile.write(out)


def test_search_of_a_folder_of_300000_messages_reads_every_uid():
    server = _Server(("127.0.0.1", 0), _Handler)
    with serving(server), session(server, timeout=30) as imap:
        uids = imap.all_uids()
    assert uids == list(range(1, FOLDER_SIZE + 1))
