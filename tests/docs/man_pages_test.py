#!/usr/bin/env python3
"""The man pages say what --help says, and render without warnings.

usage: man_pages_test.py MAN_DIR KEYFS KEYFS_CTL KEYFS_CHECK

For each program, the options (keyfs, keyfs-check) or commands (keyfs-ctl)
listed by --help, one per line in its first column, must be the items of the
man page's .TP lists, and the other way round. Each page must pass
`groff -ww -z -man` with no output and `lexgrog` must find its NAME line.
"""
import re
import subprocess
import sys

NAME = re.compile(r"^-{0,2}[a-z][a-z_0-9-]*$")


def names(items):
    """'entry_timeout=S, attr_timeout=S' -> {'entry_timeout', 'attr_timeout'}"""
    out = set()
    for item in items:
        for part in item.split(", "):
            words = part.split(" ")
            name = words[0].split("=")[0]
            if NAME.match(name):
                out.add(name)
            if len(words) > 1 and not words[1].startswith(("MOUNTPOINT", "[")):
                break  # the column ran into the description ("yes|no the kernel's")
    return out


def help_items(program):
    text = subprocess.run([program, "--help"], capture_output=True, text=True).stdout
    # "  name=VALUE   description": the first column, where a description
    # follows on the line or, indented further, on the next.
    lines = text.splitlines() + [""]
    items = []
    for line, after in zip(lines, lines[1:]):
        m = re.match(r"^  (\S(?:.*?\S)?)(?: {2,}\S|$)", line)
        if m and (not line.endswith(m.group(1)) or after.startswith("    ")):
            items.append(m.group(1))
    return names(items)


def man_items(page):
    lines = open(page).read().splitlines()
    items = []
    for i, line in enumerate(lines[:-1]):
        if line == ".TP" and lines[i + 1].startswith(".B "):
            item = lines[i + 1][3:].replace("\\-", "-").replace('"', "")
            items.append(re.sub(r"\\f[BIRP]", "", item))
    return names(items)


def main():
    man_dir, keyfs, ctl, check = sys.argv[1:5]
    failures = []
    for program, page, skip in [(keyfs, "keyfs.8", set()),
                                (ctl, "keyfs-ctl.1", set()),
                                (check, "keyfs-check.1", set())]:
        path = f"{man_dir}/{page}"
        in_help, in_man = help_items(program) - skip, man_items(path) - skip
        if not in_help:
            failures.append(f"{page}: nothing found in --help")
        for name in sorted(in_help - in_man):
            failures.append(f"{page}: --help has {name}, the man page does not")
        for name in sorted(in_man - in_help):
            failures.append(f"{page}: the man page has {name}, --help does not")
        groff = subprocess.run(["groff", "-ww", "-z", "-man", path], capture_output=True, text=True)
        if groff.returncode != 0 or groff.stderr or groff.stdout:
            failures.append(f"{page}: groff -ww: {groff.stderr.strip()}")
        lexgrog = subprocess.run(["lexgrog", path], capture_output=True, text=True)
        if lexgrog.returncode != 0:
            failures.append(f"{page}: lexgrog finds no NAME line: {lexgrog.stdout.strip()}")
        print(f"{page}: {len(in_help)} options in --help and the page")
    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
