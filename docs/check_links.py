"""Check every relative link and #anchor in README.md and docs/*.md resolves (GitHub's heading slugs).

    python3 docs/check_links.py        # from the repository root; exit status 1 when a link is broken
"""
import re, sys, unicodedata
from pathlib import Path

repo = Path(sys.argv[1] if len(sys.argv) > 1 else '.').resolve()
files = [repo / 'README.md'] + sorted((repo / 'docs').glob('*.md'))

def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r'[`*_]', lambda m: '_' if m.group(0) == '_' else '', s)  # drop markdown emphasis/code marks, keep _
    s = ''.join(ch for ch in s if ch in ' -_' or unicodedata.category(ch)[0] in 'LN')
    return s.replace(' ', '-')

def anchors(path):
    out, seen, fence = set(), {}, False
    for line in path.read_text(encoding='utf-8').split('\n'):
        if line.lstrip().startswith('```'):
            fence = not fence
            continue
        m = None if fence else re.match(r'^(#{1,6})\s+(.*?)\s*#*\s*$', line)
        if m:
            base = slug(m.group(2))
            n = seen.get(base, 0)
            out.add(base if n == 0 else f'{base}-{n}')
            seen[base] = n + 1
    return out

bad, count = [], 0
for f in files:
    text = f.read_text(encoding='utf-8')
    text_nocode = re.sub(r'```.*?```', '', text, flags=re.S)
    for target in re.findall(r'\]\(([^)\s]+)\)', text_nocode):
        if re.match(r'^[a-z]+://|^mailto:', target):
            continue
        count += 1
        path, _, frag = target.partition('#')
        dest = (f.parent / path).resolve() if path else f
        if not dest.exists():
            bad.append(f'{f.relative_to(repo)}: {target}: no such file')
            continue
        if frag:
            if dest.suffix != '.md':
                bad.append(f'{f.relative_to(repo)}: {target}: anchor into a non-markdown file')
            elif frag not in anchors(dest):
                bad.append(f'{f.relative_to(repo)}: {target}: no heading with that anchor')
print(f'{count} relative links checked in {len(files)} files; {len(bad)} broken')
for b in bad:
    print('  ' + b)
sys.exit(1 if bad else 0)
