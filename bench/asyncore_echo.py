"""The seeds' asyncore echo server (Python <= 3.11), for selectloop's benchmark.

    python3 bench/asyncore_echo.py --bind 127.0.0.1:0

Prints `listening on IP:PORT` when ready, as every server of the benchmark.
Exits with status 3 and a note on stderr when asyncore is missing (3.12+).
"""
import sys
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
try:
    import asyncore
except ImportError:
    sys.stderr.write("asyncore is not available in this Python (removed in 3.12)\n")
    sys.exit(3)
import socket


class EchoHandler(asyncore.dispatcher_with_send):
    def handle_read(self):
        data = self.recv(8192)
        if data:
            self.send(data)


class EchoServer(asyncore.dispatcher):
    def __init__(self, host, port):
        asyncore.dispatcher.__init__(self)
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.set_reuse_addr()
        self.bind((host, port))
        self.listen(128)

    def handle_accepted(self, sock, addr):
        EchoHandler(sock)


def main():
    bind = "127.0.0.1:0"
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "--bind":
        bind = args[1]
    elif args:
        sys.stderr.write("usage: asyncore_echo.py [--bind IP:PORT]\n")
        sys.exit(2)
    host, _, port = bind.rpartition(":")
    server = EchoServer(host, int(port))
    h, p = server.socket.getsockname()[:2]
    print("listening on %s:%d" % (h, p), flush=True)
    try:
        asyncore.loop(timeout=30.0)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
