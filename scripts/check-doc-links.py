#!/usr/bin/env python3
"""Usage: python3 scripts/check-doc-links.py [REPO]

Check the internal links of README.md and docs/*.md: every relative file exists and every
#anchor names a heading of its target (GitHub's anchors). Prints what is broken; exit 1 if any."""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else '.'
files = [os.path.join(root, 'README.md')] + sorted(
    os.path.join(root, 'docs', f) for f in os.listdir(os.path.join(root, 'docs')) if f.endswith('.md'))
def slug(h):
    h = h.strip().lower()
    h = h.replace('`', '')
    h = re.sub(r'[^\w\- ]', '', h)
    return h.replace(' ', '-')
def anchors(path):
    out, fence, seen = set(), False, {}
    for line in open(path, encoding='utf-8'):
        if line.startswith('```'):
            fence = not fence
        elif not fence and re.match(r'#{1,6} ', line):
            a = slug(line.lstrip('#'))
            n = seen.get(a, 0); seen[a] = n + 1
            out.add(a if n == 0 else f'{a}-{n}')
    return out
bad = 0
for f in files:
    text = open(f, encoding='utf-8').read()
    text = re.sub(r'```.*?```', '', text, flags=re.S)   # links in code blocks are not links
    text = re.sub(r'`[^`\n]*`', lambda m: '' if '](' not in m.group(0) else m.group(0), text)
    for m in re.finditer(r'\]\(([^)\s]+)\)|<(https?://[^>]+)>', text):
        target = m.group(1)
        if not target or re.match(r'https?:|mailto:', target):
            continue
        path, _, frag = target.partition('#')
        dest = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
        if not os.path.exists(dest):
            print(f'{f}: {target}: no such file'); bad += 1; continue
        if frag and dest.endswith('.md') and frag not in anchors(dest):
            print(f'{f}: {target}: no such heading'); bad += 1
print(f'{bad} broken link(s) in {len(files)} files')
sys.exit(1 if bad else 0)
