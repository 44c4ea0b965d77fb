#!/usr/bin/env python3
"""Compares the struct layout and enumerator values printed by the abi_struct_layout program
with the committed table tests/abi/struct_layout.txt (docs/ABI.md).

usage: check_layout.py TABLE PROGRAM

Passes when every recorded struct keeps each recorded field (same name, offset, size and
declared type, in the same order), fields were only appended beyond the recorded size (which
may grow the size and the alignment), every recorded enumerator keeps its value, and every
public struct starts with `uint32_t struct_size`. Additions (new structs, fields, enumerators)
pass with a note: record them with scripts/abi-update.sh in the release that adds them.
"""
import subprocess
import sys


def parse(lines, what):
    structs, enums = {}, {}
    for n, line in enumerate(lines, 1):
        w = line.split()
        if not w:
            continue
        if w[0] == 'struct' and len(w) == 6:
            structs[w[1]] = {'size': int(w[3]), 'align': int(w[5]), 'fields': []}
        elif w[0] == 'field' and len(w) >= 8:
            sname, fname = w[1].split('.', 1)
            structs[sname]['fields'].append((fname, int(w[3]), int(w[5]), ' '.join(w[7:])))
        elif w[0] == 'enum' and len(w) in (3, 4):
            enums[w[-2]] = (w[1] if len(w) == 4 else '', int(w[-1]))
        else:
            sys.exit('check_layout: %s:%d: cannot parse "%s"' % (what, n, line))
    return structs, enums


def main(argv):
    if len(argv) != 3:
        sys.exit('usage: check_layout.py TABLE PROGRAM')
    with open(argv[1], encoding='utf-8') as f:
        want_s, want_e = parse(f.read().splitlines(), argv[1])
    out = subprocess.run([argv[2]], check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout
    have_s, have_e = parse(out.splitlines(), 'program output')
    bad, notes = [], []

    for name, st in have_s.items():
        f = st['fields']
        if not f or f[0][:4] != ('struct_size', 0, 4, 'uint32_t'):
            bad.append('struct %s does not start with uint32_t struct_size' % name)
    for name, want in want_s.items():
        have = have_s.get(name)
        if have is None:
            bad.append('struct %s was removed' % name)
            continue
        appended = len(have['fields']) > len(want['fields'])
        if have['align'] < want['align'] or (have['align'] > want['align'] and not appended):
            bad.append('struct %s: alignment %d became %d' % (name, want['align'], have['align']))
        if have['size'] < want['size']:
            bad.append('struct %s: size %d shrank to %d' % (name, want['size'], have['size']))
        for i, fw in enumerate(want['fields']):
            fh = have['fields'][i] if i < len(have['fields']) else None
            if fh != fw:
                bad.append('struct %s: field %d was "%s offset %d size %d type %s", is now %s'
                           % ((name, i) + fw + ('"%s offset %d size %d type %s"' % fh if fh else 'gone',)))
        for fh in have['fields'][len(want['fields']):]:
            if fh[1] < want['size']:
                bad.append('struct %s: field %s inserted at offset %d, inside the recorded size %d'
                           % (name, fh[0], fh[1], want['size']))
            else:
                notes.append('struct %s: field %s appended at offset %d' % (name, fh[0], fh[1]))
        if have['size'] > want['size'] and len(have['fields']) == len(want['fields']):
            bad.append('struct %s: size %d grew to %d without a new field' % (name, want['size'], have['size']))
    notes += ['struct %s is new' % n for n in have_s if n not in want_s]

    for name, (tag, value) in want_e.items():
        if name not in have_e:
            bad.append('enumerator %s was removed' % name)
        elif have_e[name][1] != value:
            bad.append('enumerator %s was %d, is now %d' % (name, value, have_e[name][1]))
    notes += ['enumerator %s = %d is new' % (n, v[1]) for n, v in have_e.items() if n not in want_e]

    for n in notes:
        print('struct_layout: compatible addition: ' + n)
    for b in bad:
        print('struct_layout: INCOMPATIBLE: ' + b)
    if bad:
        print('struct_layout: FAIL; a deliberate soname bump records the new layout with '
              'scripts/abi-update.sh (docs/ABI.md)')
        return 1
    print('struct_layout: OK, %d structs and %d enumerators as recorded%s'
          % (len(want_s), len(want_e), ', plus %d addition(s) not yet recorded' % len(notes) if notes else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
