"""The benchmark's churn reference: the least a server can do with a
connection (accept it, close it), with a listen backlog of 5 and no
forwarding. Prints `listening on IP:PORT` like the other servers."""
import socket
import sys

host, port = sys.argv[sys.argv.index("--bind") + 1].rsplit(":", 1)
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((host, int(port)))
listener.listen(5)
print("listening on %s:%d" % listener.getsockname(), flush=True)
while True:
    conn, _ = listener.accept()
    conn.close()
