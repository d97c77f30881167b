"""A local S3 (moto in server mode on 127.0.0.1, a free port) for tests of s3:// inputs; no other network."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_s3() -> Iterator[str]:
    """Start moto's S3 on 127.0.0.1 and point fsspec's s3:// at it; yields the endpoint URL."""
    import fsspec
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = fsspec.config.conf.get("s3")
    fsspec.config.conf["s3"] = {"endpoint_url": endpoint, "key": "testing", "secret": "testing",
                                "skip_instance_cache": True}
    try:
        yield endpoint
    finally:
        if saved is None:
            fsspec.config.conf.pop("s3", None)
        else:
            fsspec.config.conf["s3"] = saved
        server.stop()
