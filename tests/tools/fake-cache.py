#!/usr/bin/env python3
"""fake-cache.py DIR N: writes a regmirror cache at DIR holding N tiny, valid blobs.

For the start-up measurement (issue 11, item 8): the time from a restart to the first HIT,
and the memory the index takes, with 10 000 and 100 000 cached blobs. Blob i holds the
text "blob i"; its digest is printed for blob 0 (the one to ask for). Mtimes are spread
over the last N seconds so recency differs. Existing files are left alone.
"""
import hashlib
import os
import sys
import time


def main():
    root, n = sys.argv[1], int(sys.argv[2])
    blobs = os.path.join(root, "blobs", "sha256")
    os.makedirs(os.path.join(root, "tmp"), exist_ok=True)
    now = time.time()
    first = None
    for i in range(n):
        data = b"blob %d" % i
        hexd = hashlib.sha256(data).hexdigest()
        d = os.path.join(blobs, hexd[:2])
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, hexd)
        with open(path, "wb") as f:
            f.write(data)
        t = now - n + i
        os.utime(path, (t, t))
        if first is None:
            first = hexd
    print("sha256:" + first)


if __name__ == "__main__":
    main()
