#!/usr/bin/env python3
"""Writes tests/abi/old_header/llavanext_older.h: the current public header (version.h inlined)
with the last fields of three structs cut off, standing in for a header of an older release.
Run it while the first release's API is still settling:

    python3 tests/abi/old_header/make_older.py

Once a real release has appended fields, stop using it and put that previous release's header
in place of the fixture instead (docs/ABI.md).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, '..', '..', '..'))
# struct -> first field cut off (it and every later field are removed)
CUT = {
    'llavanext_model_params': 'progress',
    'llavanext_generator_params': 'progress',
    'llavanext_budget': 'suggested_frames',
}
HEAD = '''/*
 * TEST FIXTURE, not a public header: what a program built against an OLDER libllavanext saw.
 * Written by make_older.py from include/llavanext/llavanext.h (version.h inlined), with the
 * last fields of these structs cut off, as if they had been appended in a later release:
%s
 * tests/abi/old_caller.c is compiled against it alone and linked with the current library,
 * which must accept those smaller structs (struct_size), default what they lack, and never
 * read or write beyond them. See docs/ABI.md.
 */
'''


def main():
    with open(os.path.join(ROOT, 'include/llavanext/llavanext.h'), encoding='utf-8') as f:
        s = f.read()
    with open(os.path.join(ROOT, 'include/llavanext/version.h'), encoding='utf-8') as f:
        v = f.read()
    guard = '#define LLAVANEXT_VERSION_H\n'
    vbody = v[v.index(guard) + len(guard):v.rindex('#endif')].rstrip()
    for old, new in (('#ifndef LLAVANEXT_H\n#define LLAVANEXT_H\n', '#ifndef LLAVANEXT_OLDER_H\n#define LLAVANEXT_OLDER_H\n'),
                     ('#include "version.h"\n', '/* version.h, inlined */' + vbody + '\n')):
        if s.count(old) != 1:
            sys.exit('make_older: "%s" not found once in llavanext.h' % old.strip())
        s = s.replace(old, new)
    lines = []
    for name, first in CUT.items():
        start = s.index('typedef struct %s {' % name)
        end = s.index('} %s;' % name, start)
        body = s[start:end].split('\n')
        decl = [i for i, l in enumerate(body) if l.split('/*')[0].rstrip().endswith(' %s;' % first)]
        if not decl:
            sys.exit('make_older: %s has no field %s' % (name, first))
        cut = [l.split(';')[0].split()[-1].lstrip('*') for l in body[decl[0]:] if ';' in l.split('/*')[0]]
        kept = '\n'.join(body[:decl[0]]) + '\n    /* (cut off: %s) */\n' % ', '.join(cut)
        s = s[:start] + kept + s[end:]
        lines.append(' *   %-27s ends before %s' % (name, first))
    with open(os.path.join(HERE, 'llavanext_older.h'), 'w', encoding='utf-8') as f:
        f.write(HEAD % '\n'.join(lines) + s)


if __name__ == '__main__':
    main()
