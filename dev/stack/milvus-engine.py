"""The real Milvus engine (2.3, embedded by PyPI's `milvus` package) on 127.0.0.1:PORT, data in DIR.

Usage: milvus-engine.py DIR PORT. Prints "ready" once the engine answers its health check, and stops
the engine (a child process of this one) on SIGTERM or SIGINT, so the stack can stop it like any server.
"""

import signal
import sys

from milvus import default_server


def main() -> int:
    data_dir, port = sys.argv[1], int(sys.argv[2])
    default_server.set_base_dir(data_dir)
    default_server.listen_port = port

    def stop(*_: object) -> None:
        default_server.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    default_server.start()
    print("ready", flush=True)
    code = default_server.server_proc.wait()
    print(f"milvus exited with {code}", file=sys.stderr, flush=True)
    return code or 1


if __name__ == "__main__":
    sys.exit(main())
