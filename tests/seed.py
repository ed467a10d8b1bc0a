#!/usr/bin/env python3
"""Build deterministic test images and push them to a registry over the plain
registry HTTP API (POST upload, PUT ?digest=, PUT manifest). Python stdlib only.
The one image seeder of every test script (tests/e2e, cross/test.sh, image/*).

    seed.py --registry 127.0.0.1:5000 --out images.json [--set full|small] [--cache DIR]

Sets: `full` (default; tests/e2e) is every image below, ~220 MB; `small` is
library/alpine:latest (OCI index, amd64 + arm64) and library/busybox:v2 (Docker v2
manifest), ~2 MB, for the scripts that pull through an emulated CPU or a VM.

Re-running gives identical digests: fixed mtimes/owners in tars, gzip mtime=0,
seeded PRNG for random layers, canonical JSON. Real file content comes from
Debian's busybox-static (amd64 and arm64 .debs, fetched with `apt-get download`
into DIR/debs through a private APT_CONFIG that leaves /etc/apt untouched); if
that fails, small generated files are used instead (recorded in the JSON).

The JSON lists every image: repo, tag, top digest and media type, and per
platform the manifest digest, config digest, layer digests and all blob sizes.

The `full` set also has OCI artifacts (JSON key "artifacts", not "images": they have
no platforms): a Helm chart (charts/hello:0.1.0, pushed as `helm push` does), a cosign
signature of library/alpine:latest under cosign's tag `sha256-<hex>.sig`, and an OCI
1.1 SBOM whose `subject` is library/alpine:latest, pushed by digest and listed in the
tag-schema index `sha256-<hex>` — what a client does on a registry without the
referrers API (distribution 2.8 has none).
"""
import argparse
import glob
import gzip
import hashlib
import io
import json
import lzma
import os
import random
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request

MTIME = 1700000000  # fixed mtime of every file in every layer

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
SPDX = "application/spdx+json"


def sha256(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def canon(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


# ---------------------------------------------------------------- file content

def fetch_busybox(cache):
    """Return {arch: bytes of /bin/busybox} from Debian's busybox-static, or {}."""
    debdir = os.path.join(cache, "debs")
    os.makedirs(debdir, exist_ok=True)
    out = {}
    for arch in ("amd64", "arm64"):
        debs = sorted(glob.glob(os.path.join(debdir, "busybox-static_*_%s.deb" % arch)))
        if not debs:
            try:
                apt_download(cache, debdir, arch)
            except Exception as e:  # noqa: BLE001 - any failure -> generated content
                print("seed: apt-get download busybox-static:%s failed: %s" % (arch, e),
                      file=sys.stderr)
            debs = sorted(glob.glob(os.path.join(debdir, "busybox-static_*_%s.deb" % arch)))
        if not debs:
            return {}
        try:
            out[arch] = deb_member(debs[-1], "./bin/busybox")
        except Exception as e:  # noqa: BLE001
            print("seed: cannot read %s: %s" % (debs[-1], e), file=sys.stderr)
            return {}
    return out


def apt_download(cache, debdir, arch):
    """apt-get download busybox-static:ARCH with a private apt state for ARCH only."""
    d = os.path.join(cache, "apt-" + arch)
    for sub in ("lists/partial", "cache/archives/partial", "etc/sources.list.d",
                "etc/preferences.d"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    open(os.path.join(d, "status"), "a").close()
    with open(os.path.join(d, "etc/sources.list"), "w") as f:
        f.write("deb [arch=%s signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
                "http://deb.debian.org/debian bookworm main\n" % arch)
    conf = os.path.join(d, "apt.conf")
    with open(conf, "w") as f:
        f.write("""Dir::State "{d}";
Dir::State::Lists "{d}/lists";
Dir::State::status "{d}/status";
Dir::Cache "{d}/cache";
Dir::Etc::SourceList "{d}/etc/sources.list";
Dir::Etc::SourceParts "{d}/etc/sources.list.d";
Dir::Etc::Preferences "{d}/etc/preferences";
Dir::Etc::PreferencesParts "{d}/etc/preferences.d";
APT::Architecture "{a}";
APT::Architectures {{ "{a}"; }};
APT::Sandbox::User "root";
""".format(d=d, a=arch))
    env = dict(os.environ, APT_CONFIG=conf, DEBIAN_FRONTEND="noninteractive")
    # A mirror hiccup can leave `apt-get update` exiting 0 with no index fetched (seen on
    # a fresh CI clone): check for the index and try again, a few times.
    for attempt in range(3):
        try:
            if not glob.glob(os.path.join(d, "lists", "*Packages*")):
                subprocess.run(["apt-get", "-q", "update"], env=env, check=True,
                               timeout=300, stdout=subprocess.DEVNULL)
            subprocess.run(["apt-get", "-q", "download", "busybox-static:" + arch],
                           env=env, check=True, timeout=300, cwd=debdir,
                           stdout=subprocess.DEVNULL)
            return
        except subprocess.SubprocessError as e:
            print("seed: busybox-static:%s attempt %d failed: %s" % (arch, attempt + 1, e),
                  file=sys.stderr)
            for f in glob.glob(os.path.join(d, "lists", "*Packages*")):
                os.remove(f)
            time.sleep(2 * (attempt + 1))
    # The host's own architecture can also come through the system's apt lists.
    host = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                          text=True).stdout.strip()
    if host != arch:
        raise RuntimeError("busybox-static:%s unavailable" % arch)
    subprocess.run(["apt-get", "-q", "download", "busybox-static"], check=True, timeout=300,
                   cwd=debdir, stdout=subprocess.DEVNULL)


def deb_member(path, member):
    """Read one file out of a .deb (ar archive holding data.tar.{xz,gz,zst})."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"!<arch>\n":
        raise ValueError("not an ar archive")
    pos = 8
    while pos + 60 <= len(data):
        hdr = data[pos:pos + 60]
        name = hdr[:16].decode().strip().rstrip("/")
        size = int(hdr[48:58].decode().strip())
        body = data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)
        if name.startswith("data.tar"):
            if name.endswith(".xz"):
                body = lzma.decompress(body)
            elif name.endswith(".gz"):
                body = gzip.decompress(body)
            elif name != "data.tar":
                raise ValueError("unsupported " + name)
            with tarfile.open(fileobj=io.BytesIO(body)) as t:
                return t.extractfile(member).read()
    raise ValueError("no data.tar in " + path)


def fake_busybox(arch):
    """Stand-in when the .debs are unavailable: a small deterministic file."""
    r = random.Random("busybox-" + arch)
    return b"#!/bin/sh\necho fake busybox %s\n" % arch.encode() + r.randbytes(256 * 1024)


# ---------------------------------------------------------------------- layers

def make_tar(entries):
    """entries: list of (path, kind, data) kind in file|dir|symlink; sorted, fixed metadata."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for path, kind, data in sorted(entries, key=lambda e: e[0]):
            ti = tarfile.TarInfo(path)
            ti.mtime = MTIME
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = data
                ti.mode = 0o777
                t.addfile(ti)
            else:
                ti.size = len(data)
                ti.mode = 0o755 if path.startswith("bin/") else 0o644
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def gz(raw, level=6):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=buf, mode="wb", mtime=0, compresslevel=level) as g:
        g.write(raw)
    return buf.getvalue()


class Layer:
    def __init__(self, raw, level=6):
        self.diff_id = sha256(raw)
        self.data = gz(raw, level)
        self.digest = sha256(self.data)
        self.size = len(self.data)


def busybox_layer(bb, label):
    entries = [("bin", "dir", None), ("etc", "dir", None), ("tmp", "dir", None),
               ("bin/busybox", "file", bb),
               ("etc/os-release", "file", ("NAME=regmirror-e2e\nID=%s\n" % label).encode())]
    for applet in ("sh", "ls", "cat", "echo", "true", "uname"):
        entries.append(("bin/" + applet, "symlink", "busybox"))
    return Layer(make_tar(entries))


def file_layer(path, data, level=6):
    parts = path.split("/")
    entries = [("/".join(parts[:i]), "dir", None) for i in range(1, len(parts))]
    entries.append((path, "file", data))
    return Layer(make_tar(entries), level)


def text_blob(seed, n):
    """Compressible, deterministic text of n bytes."""
    r = random.Random(seed)
    words = ["regmirror", "blob", "layer", "digest", "cache", "upstream", "pull", "tag",
             "manifest", "index", "alpine", "debian", "arm64", "amd64", "busybox"]
    out = []
    size = 0
    while size < n:
        line = " ".join(r.choice(words) for _ in range(12)) + "\n"
        out.append(line)
        size += len(line)
    return "".join(out).encode()[:n]


# -------------------------------------------------------------------- images

def config_blob(arch, layers, label, docker):
    cfg = {
        "architecture": arch,
        "os": "linux",
        "created": "2023-11-14T22:13:20Z",
        "config": {"Env": ["PATH=/bin", "E2E_IMAGE=" + label], "Cmd": ["/bin/sh"],
                   "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "seed.py " + label}
                    for _ in layers],
    }
    if arch == "arm64":
        cfg["variant"] = "v8"
    return canon(cfg)


def image_manifest(arch, layers, label, docker):
    cfg = config_blob(arch, layers, label, docker)
    m = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
                   "digest": sha256(cfg), "size": len(cfg)},
        "layers": [{"mediaType": DOCKER_LAYER if docker else OCI_LAYER,
                    "digest": l.digest, "size": l.size} for l in layers],
    }
    body = canon(m)
    return {"arch": arch, "body": body, "media_type": m["mediaType"], "config": cfg,
            "layers": layers}


def index_of(mans, docker):
    idx = {
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST if docker else OCI_INDEX,
        "manifests": [{"mediaType": m["media_type"], "digest": sha256(m["body"]),
                       "size": len(m["body"]),
                       "platform": dict({"architecture": m["arch"], "os": "linux"},
                                        **({"variant": "v8"} if m["arch"] == "arm64" else {}))}
                      for m in mans],
    }
    return canon(idx), idx["mediaType"]


# Which images each --set holds, by "repo:tag".
SETS = {
    "full": ["library/alpine:latest", "library/debian:bookworm", "library/busybox:v2",
             "library/oci:1", "myorg/team/app:1.0", "library/big:latest"],
    "small": ["library/alpine:latest", "library/busybox:v2"],
}


def build(args):
    bb = {} if args.no_busybox else fetch_busybox(args.cache)
    real = bool(bb)
    if not real:
        bb = {a: fake_busybox(a) for a in ("amd64", "arm64")}
    base = {a: busybox_layer(bb[a], "alpine-" + a) for a in ("amd64", "arm64")}
    want = SETS[args.set]
    builders = {
        "library/alpine:latest": lambda: alpine(base),
        "library/debian:bookworm": lambda: debian(bb),
        "library/busybox:v2": lambda: busybox(bb),
        "library/oci:1": lambda: oci(bb),
        "myorg/team/app:1.0": lambda: app(base),
        "library/big:latest": lambda: big(bb, args.big_mib),
    }
    return [builders[ref]() for ref in want], real


def alpine(base):
    """library/alpine:latest — OCI index, amd64 + arm64 OCI manifests."""
    mans = [image_manifest(a, [base[a]], "alpine", docker=False) for a in ("amd64", "arm64")]
    body, mt = index_of(mans, docker=False)
    return ("library/alpine", "latest", body, mt, mans)


def debian(bb):
    """library/debian:bookworm — Docker manifest list, amd64 + arm64 Docker v2 manifests."""
    mans = []
    for a in ("amd64", "arm64"):
        ls = [busybox_layer(bb[a], "debian-" + a),
              file_layer("usr/share/doc/e2e/%s.txt" % a, text_blob("debian-doc-" + a, 3 << 20)),
              file_layer("var/lib/e2e/%s.bin" % a, random.Random("debian-" + a).randbytes(1 << 20))]
        mans.append(image_manifest(a, ls, "debian", docker=True))
    body, mt = index_of(mans, docker=True)
    return ("library/debian", "bookworm", body, mt, mans)


def busybox(bb):
    """library/busybox:v2 — single Docker v2 manifest."""
    m = image_manifest("amd64", [busybox_layer(bb["amd64"], "busybox")], "busybox", docker=True)
    return ("library/busybox", "v2", m["body"], m["media_type"], [m])


def oci(bb):
    """library/oci:1 — single OCI manifest (two layers)."""
    m = image_manifest("amd64", [busybox_layer(bb["amd64"], "oci"),
                                 file_layer("srv/oci.txt", text_blob("oci", 200 << 10))],
                       "oci", docker=False)
    return ("library/oci", "1", m["body"], m["media_type"], [m])


def app(base):
    """myorg/team/app:1.0 — nested name, shares alpine's amd64 layer."""
    m = image_manifest("amd64", [base["amd64"],
                                 file_layer("app/app.bin", random.Random("app").randbytes(512 << 10))],
                       "app", docker=True)
    return ("myorg/team/app", "1.0", m["body"], m["media_type"], [m])


def big(bb, big_mib):
    """library/big:latest — ~200 MB: one incompressible big layer + smaller ones."""
    big = big_mib << 20
    ls = [busybox_layer(bb["amd64"], "big"),
          file_layer("data/big.bin", random.Random("big-0").randbytes(big), level=1),
          file_layer("data/half.bin", random.Random("big-1").randbytes(big // 2), level=1),
          file_layer("data/quarter.bin", random.Random("big-2").randbytes(big // 4), level=1),
          file_layer("data/small.bin", random.Random("big-3").randbytes(big // 8), level=1),
          file_layer("data/text.txt", text_blob("big-text", 4 << 20))]
    m = image_manifest("amd64", ls, "big", docker=False)
    return ("library/big", "latest", m["body"], m["media_type"], [m])


# ----------------------------------------------------------------- artifacts

def artifacts(alpine_digest, alpine_size):
    """The OCI artifacts: [(name, repo, tag or None, body, media type, [(blob, media type)],
    artifact type, subject digest or None)], pushed in this order (the SBOM before the
    tag-schema index that lists it)."""
    out = []
    # A Helm chart as `helm push` stores it: config = Chart.yaml as JSON, one .tgz layer.
    chart_yaml = b"apiVersion: v2\nname: hello\nversion: 0.1.0\ndescription: regmirror e2e chart\n"
    tgz = gz(make_tar([("hello", "dir", None), ("hello/Chart.yaml", "file", chart_yaml),
                       ("hello/values.yaml", "file", b"greeting: hello\n"),
                       ("hello/templates", "dir", None),
                       ("hello/templates/cm.yaml", "file",
                        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n"
                        b"data:\n  greeting: {{ .Values.greeting }}\n")]))
    cfg = canon({"apiVersion": "v2", "description": "regmirror e2e chart", "name": "hello",
                 "version": "0.1.0"})
    man = canon({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                 "config": {"mediaType": HELM_CONFIG, "digest": sha256(cfg), "size": len(cfg)},
                 "layers": [{"mediaType": HELM_CHART, "digest": sha256(tgz), "size": len(tgz)}],
                 "annotations": {"org.opencontainers.image.title": "hello",
                                 "org.opencontainers.image.version": "0.1.0"}})
    out.append(("helm", "charts/hello", "0.1.0", man, OCI_MANIFEST,
                [(cfg, HELM_CONFIG), (tgz, HELM_CHART)], HELM_CONFIG, None))
    # A cosign signature (the layout `cosign sign` writes; the signature is not a real one).
    payload = canon({"critical": {"identity": {"docker-reference": "docker.io/library/alpine"},
                                  "image": {"docker-manifest-digest": alpine_digest},
                                  "type": "cosign container image signature"},
                     "optional": None})
    scfg = canon({"architecture": "", "config": {}, "created": "0001-01-01T00:00:00Z",
                  "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
                  "rootfs": {"diff_ids": [sha256(payload)], "type": "layers"}})
    sig = canon({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                 "config": {"mediaType": OCI_CONFIG, "digest": sha256(scfg), "size": len(scfg)},
                 "layers": [{"mediaType": COSIGN_SIMPLESIGNING, "digest": sha256(payload),
                             "size": len(payload),
                             "annotations": {"dev.cosignproject.cosign/signature":
                                             "MEUCIQDe2eRegmirrorTestSignatureNotRealAAAAAAAAAAAAAA=="}}]})
    hexd = alpine_digest.split(":", 1)[1]
    out.append(("signature", "library/alpine", "sha256-%s.sig" % hexd, sig, OCI_MANIFEST,
                [(scfg, OCI_CONFIG), (payload, COSIGN_SIMPLESIGNING)], OCI_CONFIG, None))
    # An OCI 1.1 SBOM referring to alpine's index, and the tag-schema index listing it.
    sbom_doc = canon({"spdxVersion": "SPDX-2.3", "name": "alpine", "SPDXID": "SPDXRef-DOCUMENT"})
    empty = b"{}"
    sbom = canon({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": SPDX,
                  "config": {"mediaType": OCI_EMPTY, "digest": sha256(empty), "size": 2},
                  "layers": [{"mediaType": SPDX, "digest": sha256(sbom_doc), "size": len(sbom_doc)}],
                  "subject": {"mediaType": OCI_INDEX, "digest": alpine_digest, "size": alpine_size},
                  "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}})
    out.append(("sbom", "library/alpine", None, sbom, OCI_MANIFEST,
                [(empty, OCI_EMPTY), (sbom_doc, SPDX)], SPDX, alpine_digest))
    fallback = canon({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha256(sbom), "size": len(sbom), "artifactType": SPDX,
         "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}}]})
    out.append(("referrers-tag", "library/alpine", "sha256-%s" % hexd, fallback, OCI_INDEX,
                [], None, None))
    return out


# ---------------------------------------------------------------------- push

class Registry:
    def __init__(self, base):
        self.base = base.rstrip("/")
        if "://" not in self.base:
            self.base = "http://" + self.base

    def req(self, method, path, data=None, headers=None, ok=(200, 201, 202, 204)):
        url = path if path.startswith("http") else self.base + path
        r = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(r, timeout=300) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return e.code, e.headers, e.read()
            raise RuntimeError("%s %s -> %d %s" % (method, url, e.code, e.read()[:300]))

    def has_blob(self, repo, digest):
        try:
            st, _, _ = self.req("HEAD", "/v2/%s/blobs/%s" % (repo, digest), ok=(200, 404))
            return st == 200
        except RuntimeError:
            return False

    def put_blob(self, repo, data):
        digest = sha256(data)
        if self.has_blob(repo, digest):
            return digest
        _, h, _ = self.req("POST", "/v2/%s/blobs/uploads/" % repo)
        loc = h["Location"]
        if loc.startswith("/"):
            loc = self.base + loc
        loc += ("&" if "?" in loc else "?") + "digest=" + digest
        self.req("PUT", loc, data=data, headers={"Content-Type": "application/octet-stream",
                                                  "Content-Length": str(len(data))})
        if not self.has_blob(repo, digest):
            raise RuntimeError("blob %s missing after upload" % digest)
        return digest

    def put_manifest(self, repo, ref, body, mt):
        _, h, _ = self.req("PUT", "/v2/%s/manifests/%s" % (repo, ref), data=body,
                           headers={"Content-Type": mt})
        got = h.get("Docker-Content-Digest")
        if got and got != sha256(body):
            raise RuntimeError("registry changed manifest digest %s != %s" % (got, sha256(body)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--registry", default="127.0.0.1:5000")
    ap.add_argument("--out", help="where to write the image description JSON (required "
                                  "unless --fetch-only)")
    ap.add_argument("--set", choices=sorted(SETS), default="full",
                    help="which images to build and push (default: full)")
    ap.add_argument("--cache", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                    "..", "target", "seed-cache"),
                    help="where downloaded .debs are kept (default: target/seed-cache)")
    ap.add_argument("--big-mib", type=int, default=100, help="size of big's largest layer")
    ap.add_argument("--no-busybox", action="store_true", help="use generated files only")
    ap.add_argument("--dry-run", action="store_true", help="build and describe, push nothing")
    ap.add_argument("--fetch-only", action="store_true",
                    help="only download the busybox .debs into --cache (run this with network "
                         "access; the seeding itself runs in a netns that has none)")
    args = ap.parse_args()
    if args.fetch_only:
        sys.exit(0 if fetch_busybox(args.cache) else 1)
    if not args.out:
        ap.error("--out is required")

    images, real = build(args)
    reg = Registry(args.registry)
    out = {"busybox_from_debian": real, "set": args.set, "images": []}
    for repo, tag, body, mt, mans in images:
        top = sha256(body)
        plats = []
        for m in mans:
            blobs = [{"digest": sha256(m["config"]), "size": len(m["config"]), "kind": "config"}]
            blobs += [{"digest": l.digest, "size": l.size, "kind": "layer", "diff_id": l.diff_id}
                      for l in m["layers"]]
            plats.append({"os": "linux", "architecture": m["arch"],
                          "digest": sha256(m["body"]), "media_type": m["media_type"],
                          "size": len(m["body"]), "config": sha256(m["config"]),
                          "layers": [l.digest for l in m["layers"]], "blobs": blobs})
            if not args.dry_run:
                reg.put_blob(repo, m["config"])
                for l in m["layers"]:
                    reg.put_blob(repo, l.data)
                reg.put_manifest(repo, sha256(m["body"]), m["body"], m["media_type"])
        if not args.dry_run:
            reg.put_manifest(repo, tag, body, mt)
        total = sum(b["size"] for p in plats for b in p["blobs"])
        out["images"].append({"repo": repo, "tag": tag, "digest": top, "media_type": mt,
                              "size": len(body), "multiarch": mt in (OCI_INDEX, DOCKER_LIST),
                              "total_blob_bytes": total, "platforms": plats})
        print("seed: %-20s %-9s %s %6.1f MB %s" % (repo, tag, top, total / 1e6,
                                                   mt.rsplit(".", 2)[-2] if "." in mt else mt),
              file=sys.stderr)
    alpine = [i for i in out["images"] if i["repo"] == "library/alpine" and i["tag"] == "latest"]
    out["artifacts"] = []
    if args.set == "full" and alpine:
        for name, repo, tag, body, mt, blobs, atype, subject in artifacts(alpine[0]["digest"],
                                                                           alpine[0]["size"]):
            if not args.dry_run:
                for data, _ in blobs:
                    reg.put_blob(repo, data)
                reg.put_manifest(repo, tag or sha256(body), body, mt)
            out["artifacts"].append({
                "name": name, "repo": repo, "tag": tag, "digest": sha256(body), "media_type": mt,
                "size": len(body), "artifact_type": atype, "subject": subject,
                "blobs": [{"digest": sha256(d), "size": len(d), "media_type": m} for d, m in blobs]})
            print("seed: artifact %-14s %s:%s %s" % (name, repo, tag or "-", sha256(body)),
                  file=sys.stderr)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
