#!/usr/bin/env python3
"""Push a tiny, deterministic test image set to a plain-HTTP registry.

usage: testimage.py http://127.0.0.1:PORT REPO

Writes, with the registry API only (POST upload, PUT blob ?digest=, PUT manifest):
  REPO:multi  OCI index -> linux/amd64 + linux/arm64 OCI manifests (one shared layer)
  REPO:v2     Docker schema 2 manifest
Same bytes every run (fixed mtimes, gzip mtime 0). Prints JSON
{"multi": "sha256:…", "v2": "sha256:…", "blobs": N} on stdout, where N is the
number of blobs + manifests a `skopeo copy --all` of both tags fetches.
"""
import gzip, hashlib, io, json, sys, tarfile, urllib.request

base, repo = sys.argv[1].rstrip("/"), sys.argv[2]

def layer(files):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in sorted(files.items()):
            ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = 1700000000
            ti.mode = 0o644; ti.uid = ti.gid = 0; ti.uname = ti.gname = ""
            t.addfile(ti, io.BytesIO(data))
    tar = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=9, filename="") as g:
        g.write(tar)
    return gz.getvalue(), "sha256:" + hashlib.sha256(tar).hexdigest()

def dig(b): return "sha256:" + hashlib.sha256(b).hexdigest()

def req(method, url, data=None, ctype=None):
    r = urllib.request.Request(url, data=data, method=method)
    if ctype: r.add_header("Content-Type", ctype)
    return urllib.request.urlopen(r, timeout=30)

def put_blob(b):
    with req("POST", f"{base}/v2/{repo}/blobs/uploads/") as r:
        loc = r.headers["Location"]
    if loc.startswith("/"): loc = base + loc
    loc += ("&" if "?" in loc else "?") + "digest=" + dig(b)
    req("PUT", loc, b, "application/octet-stream").close()
    return {"digest": dig(b), "size": len(b)}

def put_manifest(ref, b, mt):
    req("PUT", f"{base}/v2/{repo}/manifests/{ref}", b, mt).close()
    return dig(b)

def jb(o): return json.dumps(o, sort_keys=True, separators=(",", ":")).encode()

shared, shared_diff = layer({"etc/regmirror-test/shared.txt": b"shared layer\n" * 200})
blobs = set()
def image(arch, mt_manifest, mt_config, mt_layer):
    own, own_diff = layer({f"etc/regmirror-test/{arch}.txt": f"hello from {arch}\n".encode() * 50})
    cfg = jb({"architecture": arch, "os": "linux", "created": "2023-11-14T22:13:20Z",
              "config": {"Cmd": ["/bin/true"]},
              "rootfs": {"type": "layers", "diff_ids": [shared_diff, own_diff]}})
    c = put_blob(cfg); l1 = put_blob(shared); l2 = put_blob(own)
    blobs.update([c["digest"], l1["digest"], l2["digest"]])
    m = jb({"schemaVersion": 2, "mediaType": mt_manifest,
            "config": dict(mediaType=mt_config, **c),
            "layers": [dict(mediaType=mt_layer, **l1), dict(mediaType=mt_layer, **l2)]})
    return m

OCI_M = "application/vnd.oci.image.manifest.v1+json"
OCI_I = "application/vnd.oci.image.index.v1+json"
D_M = "application/vnd.docker.distribution.manifest.v2+json"
ents = []
for arch in ("amd64", "arm64"):
    m = image(arch, OCI_M, "application/vnd.oci.image.config.v1+json",
              "application/vnd.oci.image.layer.v1.tar+gzip")
    put_manifest(dig(m), m, OCI_M)
    blobs.add(dig(m))
    ents.append({"mediaType": OCI_M, "digest": dig(m), "size": len(m),
                 "platform": {"architecture": arch, "os": "linux"}})
idx = jb({"schemaVersion": 2, "mediaType": OCI_I, "manifests": ents})
multi = put_manifest("multi", idx, OCI_I)

m = image("arm", D_M, "application/vnd.docker.container.image.v1+json",
          "application/vnd.docker.image.rootfs.diff.tar.gzip")
v2 = put_manifest("v2", m, D_M)
print(json.dumps({"multi": multi, "v2": v2, "blobs": len(blobs)}))
