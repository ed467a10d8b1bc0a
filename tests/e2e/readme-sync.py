#!/usr/bin/env python3
"""Check that README.zh-CN.md gives the same commands as README.md for the sections it covers.

    tests/e2e/readme-sync.py [EN] [ZH]      # default: README.md README.zh-CN.md at the top

Each `## ` heading of the Chinese README names the English section it translates in a
comment: `## 在树莓派上安装 <!-- en: Install on a Raspberry Pi -->`. For every such pair the
fenced code blocks must be the same, in the same order, with the same info string — compared
after dropping comments, which may be translated (`#` lines, and ` # …` at the end of a shell
line). The sections listed in COVERED must all be there. Prints one `ok N - …` / `not ok N - …`
line per section and `N passed, M failed`; exits 1 on any difference.
"""
import os
import re
import sys

# The English sections the Chinese README must cover (issue 10: what it is, the quick start
# for a Raspberry Pi, a Debian host, a container and boot2docker, the client snippets).
COVERED = ["Two commands", "Point your clients at it", "Install on a Raspberry Pi",
           "Run as a container", "boot2docker-like hosts"]

MARKER = re.compile(r"<!--\s*en:\s*(.*?)\s*-->")
FENCE = re.compile(r"^(\s*)```(.*)$")


def sections(path, by_marker):
    """{section name: [lines]} for each `## ` heading (named by its marker if by_marker)."""
    out, name = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            if line.startswith("## "):
                if by_marker:
                    m = MARKER.search(line)
                    name = m.group(1) if m else None
                else:
                    name = line[3:].strip()
                if name is not None:
                    out[name] = []
                continue
            if name is not None:
                out[name].append(line)
    return out


def strip_comment(line, info):
    s = line.strip()
    if info in ("sh", "ini", "toml", "yaml", "") and s.startswith("#"):
        return None
    if info == "sh":
        m = re.search(r"\s+#\s.*$", line)
        if m and line[:m.start()].count("'") % 2 == 0 and line[:m.start()].count('"') % 2 == 0:
            line = line[:m.start()]
    return line.rstrip()


def blocks(lines):
    """[(info, normalised text)] of the fenced code blocks, fences indented or not."""
    out, cur, info, ind = [], None, "", 0
    for line in lines:
        m = FENCE.match(line)
        if m and cur is None:
            cur, info, ind = [], m.group(2).strip(), len(m.group(1))
            continue
        if m and cur is not None:
            body = [strip_comment(l, info) for l in cur]
            out.append((info, "\n".join(l for l in body if l)))
            cur = None
            continue
        if cur is not None:
            cur.append(line[ind:] if line[:ind].strip() == "" else line)
    return out


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    en_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "README.md")
    zh_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "README.zh-CN.md")
    en, zh = sections(en_path, False), sections(zh_path, True)
    n = failed = 0
    for name in COVERED + [s for s in zh if s not in COVERED]:
        n += 1
        problem = None
        if name not in en:
            problem = "README.md has no section '## %s'" % name
        elif name not in zh:
            problem = "README.zh-CN.md has no section marked <!-- en: %s -->" % name
        else:
            a, b = blocks(en[name]), blocks(zh[name])
            if len(a) != len(b):
                problem = "%d code blocks in README.md, %d in README.zh-CN.md" % (len(a), len(b))
            for i, (x, y) in enumerate(zip(a, b)):
                if problem:
                    break
                if x != y:
                    problem = "code block %d differs:\n--- README.md (%s)\n%s\n--- README.zh-CN.md (%s)\n%s" % (
                        i + 1, x[0], x[1], y[0], y[1])
        if problem:
            failed += 1
            print("not ok %d - %s" % (n, name))
            for line in problem.splitlines():
                print("#   " + line)
        else:
            print("ok %d - %s: %d code blocks the same" % (n, name, len(blocks(en[name]))))
    print("%d passed, %d failed" % (n - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
