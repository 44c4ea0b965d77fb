#!/usr/bin/env python3
"""Applies libllavanext's ABI policy (docs/ABI.md) to two libabigail XML dumps.

usage: abi-compare.py BASELINE.abi CURRENT.abi

abidiff (run by scripts/abi-check.sh) gives the readable report, but its suppression for "fields
appended at the end" also hides changes that insert nothing (two fields swapping places, a
field widened into padding), so this script decides, from the same dumps:

  - every exported function of the baseline still exists under the same symbol version, with
    the same return type and parameter types (compared structurally, by name and shape);
  - every public struct of the baseline keeps each of its fields: same name, same offset, same
    type, in the same order; new fields only at offsets at or beyond the old size; the size
    never shrinks.

New functions and appended fields are reported and accepted. Exit status: 0 compatible,
1 incompatible, 2 usage or input error.
"""
import sys
import xml.etree.ElementTree as ET


class Corpus:
    def __init__(self, path):
        root = ET.parse(path).getroot()
        self.types = {}
        self.functions = {}
        self.structs = {}
        for el in root.iter():
            tid = el.get('id')
            if tid is not None and el.tag != 'subrange' and tid not in self.types:
                self.types[tid] = el
            if el.tag == 'function-decl' and el.get('elf-symbol-id'):
                self.functions.setdefault(el.get('name'), el)
            if el.tag == 'class-decl' and el.get('is-declaration-only') != 'yes':
                self.structs.setdefault(el.get('name'), el)

    def describe(self, tid, seen=()):
        """A string naming the type by its shape; structs by name only (checked on their own)."""
        el = self.types.get(tid)
        if el is None:
            return '?' + tid
        if tid in seen:
            return '...'
        seen = seen + (tid,)
        tag = el.tag
        if tag == 'type-decl':
            return '%s:%s' % (el.get('name'), el.get('size-in-bits', '-'))
        if tag == 'typedef-decl':
            under = self.types.get(el.get('type-id'))
            if under is not None and under.tag in ('class-decl', 'union-decl', 'enum-decl'):
                return el.get('name')
            return '%s=%s' % (el.get('name'), self.describe(el.get('type-id'), seen))
        if tag == 'qualified-type-def':
            quals = [q for q in ('const', 'volatile', 'restrict') if el.get(q) == 'yes']
            return '%s %s' % (' '.join(quals), self.describe(el.get('type-id'), seen))
        if tag in ('pointer-type-def', 'reference-type-def'):
            return self.describe(el.get('type-id'), seen) + '*'
        if tag == 'array-type-def':
            dims = ''.join('[%s]' % s.get('length', '') for s in el.findall('subrange'))
            return self.describe(el.get('type-id'), seen) + dims
        if tag == 'function-type':
            return 'fn(%s)->%s' % self.signature(el, seen)
        if tag == 'class-decl':
            return 'struct ' + el.get('name', '<anonymous>')
        if tag == 'union-decl':
            return 'union ' + el.get('name', '<anonymous>')
        if tag == 'enum-decl':
            return 'enum ' + el.get('name', '<anonymous>')
        return '%s(%s)' % (tag, el.get('name', ''))

    def short(self, tid):
        """The type as C spells it, for messages."""
        el = self.types.get(tid)
        if el is None:
            return '?'
        if el.tag in ('type-decl', 'typedef-decl'):
            return el.get('name')
        if el.tag == 'qualified-type-def':
            return 'const ' + self.short(el.get('type-id')) if el.get('const') == 'yes' else self.short(el.get('type-id'))
        if el.tag == 'pointer-type-def':
            return self.short(el.get('type-id')) + '*'
        if el.tag == 'array-type-def':
            return self.short(el.get('type-id')) + ''.join('[%s]' % s.get('length', '') for s in el.findall('subrange'))
        if el.tag in ('class-decl', 'union-decl', 'enum-decl'):
            return el.get('name', '<anonymous>')
        return 'function'

    def signature(self, fn, seen=()):
        params = []
        for p in fn.findall('parameter'):
            params.append('...' if p.get('is-variadic') == 'yes' else self.describe(p.get('type-id'), seen))
        ret = fn.find('return')
        return ', '.join(params), self.describe(ret.get('type-id'), seen) if ret is not None else 'void'

    def members(self, struct):
        """(name, offset in bits, type shape, type as spelt) of each field, in order."""
        out = []
        for dm in struct.findall('data-member'):
            var = dm.find('var-decl')
            out.append((var.get('name'), int(dm.get('layout-offset-in-bits', '0')),
                        self.describe(var.get('type-id')), self.short(var.get('type-id'))))
        return out


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        old, new = Corpus(argv[1]), Corpus(argv[2])
    except (OSError, ET.ParseError) as e:
        print('abi-compare: %s' % e, file=sys.stderr)
        return 2
    bad, notes = [], []

    for name, fn in sorted(old.functions.items()):
        cur = new.functions.get(name)
        if cur is None:
            bad.append('function %s was removed' % name)
            continue
        if cur.get('elf-symbol-id') != fn.get('elf-symbol-id'):
            bad.append('function %s: symbol %s became %s' % (name, fn.get('elf-symbol-id'), cur.get('elf-symbol-id')))
        if old.signature(fn) != new.signature(cur):
            def spelt(c, f):
                ret = f.find('return')
                return '%s %s(%s)' % (c.short(ret.get('type-id')) if ret is not None else 'void', name,
                                      ', '.join(c.short(p.get('type-id')) for p in f.findall('parameter')))
            bad.append('function %s became %s' % (spelt(old, fn), spelt(new, cur)))
    for name in sorted(set(new.functions) - set(old.functions)):
        notes.append('function %s was added' % name)

    for name, st in sorted(old.structs.items()):
        if not name or not name.startswith('llavanext_'):
            continue
        cur = new.structs.get(name)
        if cur is None:
            bad.append('struct %s was removed or became opaque' % name)
            continue
        old_size, new_size = int(st.get('size-in-bits', '0')), int(cur.get('size-in-bits', '0'))
        was, now = old.members(st), new.members(cur)
        errs, added = [], []
        for i, (mname, off, desc, spelt) in enumerate(was):
            if i >= len(now):
                errs.append('field %s %s (offset %d) was removed' % (spelt, mname, off // 8))
            elif now[i][:3] != (mname, off, desc):
                errs.append('field %d was %s %s at offset %d, is now %s %s at offset %d'
                            % (i, spelt, mname, off // 8, now[i][3], now[i][0], now[i][1] // 8))
        for mname, off, desc, spelt in now[len(was):]:
            if off < old_size:
                errs.append('field %s %s inserted at offset %d, inside the old size %d'
                            % (spelt, mname, off // 8, old_size // 8))
            else:
                added.append('field %s %s appended at offset %d' % (spelt, mname, off // 8))
        if new_size < old_size:
            errs.append('size shrank from %d to %d bytes' % (old_size // 8, new_size // 8))
        elif new_size > old_size and not added:
            errs.append('size grew from %d to %d bytes without a new field' % (old_size // 8, new_size // 8))
        bad += ['struct %s: %s' % (name, e) for e in errs]
        if not errs:
            notes += ['struct %s: %s' % (name, a) for a in added]

    for n in notes:
        print('abi-compare: compatible: ' + n)
    for b in bad:
        print('abi-compare: INCOMPATIBLE: ' + b)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
