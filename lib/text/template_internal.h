/* Internals of the chat-template interpreter shared by lib/text/template_*.c: the arena every
 * parse and render allocates from, byte buffers, values, tokens and the syntax tree. */
#ifndef LNX_TEXT_TEMPLATE_INTERNAL_H
#define LNX_TEXT_TEMPLATE_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/status.h"
#include "template.h"

enum {
    TPL_MAX_PARSE_DEPTH = 100,  /* nested expressions and blocks while parsing */
    TPL_MAX_EVAL_DEPTH = 400,   /* nested evaluation (chains of operators, blocks) */
    TPL_MAX_VALUE_DEPTH = 200,  /* nested lists/dicts printed, compared or serialised */
    TPL_MAX_CHAIN = 256,        /* operators, postfixes or filters chained in one expression */
    TPL_MAX_BRACKETS = 256,     /* open brackets inside one tag */
    TPL_MAX_RANGE = 100000,     /* items of range(), as Jinja's sandbox */
};
#define TPL_MAX_STEPS ((uint64_t)20000000)
#define TPL_PARSE_MEMORY ((size_t)256 << 20)
#define TPL_RENDER_MEMORY ((size_t)256 << 20)

/* ---- arena ---------------------------------------------------------------------------------- */

typedef struct tpl_chunk tpl_chunk;

typedef struct tpl_arena {
    tpl_chunk *head;
    size_t total;  /* bytes of all chunks */
    size_t cap;    /* limit on total */
} tpl_arena;

void tpl_arena_init(tpl_arena *a, size_t cap);
void tpl_arena_free(tpl_arena *a);
/* 16-byte aligned, uninitialised. NULL when out of memory or over the cap; the error detail is
 * then set and tpl_arena_status() gives the status to return. */
void *tpl_alloc(tpl_arena *a, size_t size);
/* Same as tpl_alloc for n * size bytes, overflow-checked. */
void *tpl_alloc_n(tpl_arena *a, size_t n, size_t size);
/* Copy of n bytes plus a NUL. */
char *tpl_strndup(tpl_arena *a, const char *s, size_t n);
/* Status for the last failed tpl_alloc (LNX_E_NOMEM or LNX_E_LIMIT). */
lnx_status tpl_arena_status(void);

/* ---- byte buffer ---------------------------------------------------------------------------- */

/* Growable bytes: in an arena when `ar` is set, otherwise malloc'ed (the owner frees p). */
typedef struct tpl_buf {
    char *p;
    size_t n, cap, limit;
    tpl_arena *ar;
} tpl_buf;

lnx_status tpl_buf_put(tpl_buf *b, const char *s, size_t n);
lnx_status tpl_buf_putc(tpl_buf *b, char ch);
lnx_status tpl_buf_puts(tpl_buf *b, const char *s);
/* Appends code point cp as UTF-8. */
lnx_status tpl_buf_put_cp(tpl_buf *b, uint32_t cp);

/* ---- text helpers --------------------------------------------------------------------------- */

/* Length of the (Python str.isspace) whitespace character at s[i..n), 0 when none. */
size_t tpl_space_at(const char *s, size_t n, size_t i);
/* Length of the whitespace character that ends s[0..i), 0 when none. */
size_t tpl_space_before(const char *s, size_t i);
/* Decodes one UTF-8 sequence at s[i..n) (invalid bytes decode as themselves, length 1). */
uint32_t tpl_utf8_next(const char *s, size_t n, size_t *i);
/* Number of code points. */
size_t tpl_utf8_count(const char *s, size_t n);
/* 1-based line and column (in code points) of byte offset pos. */
void tpl_line_col(const char *src, size_t pos, int *line, int *col);
/* Python repr of a float into buf (at least 32 bytes). */
void tpl_format_float(double f, char *buf, size_t size);

/* ---- tokens --------------------------------------------------------------------------------- */

enum tpl_tok_kind {
    TK_EOF,
    TK_DATA,
    TK_VAR_BEGIN,
    TK_VAR_END,
    TK_BLOCK_BEGIN,
    TK_BLOCK_END,
    TK_NAME,
    TK_STRING,
    TK_INT,
    TK_FLOAT,
    TK_OP,
};

enum tpl_op {
    OP_NONE,
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_TILDE,
    OP_EQ, OP_NE, OP_LT, OP_GT, OP_LE, OP_GE, OP_IN, OP_NOTIN,
    OP_ASSIGN, OP_DOT, OP_COMMA, OP_COLON, OP_PIPE,
    OP_LPAREN, OP_RPAREN, OP_LBRACKET, OP_RBRACKET, OP_LBRACE, OP_RBRACE,
};

typedef struct tpl_token {
    uint8_t kind;
    uint8_t op;
    size_t pos;     /* byte offset in the normalised source */
    const char *s;  /* TK_DATA, TK_NAME, TK_STRING text (strings decoded) */
    size_t n;
    int64_t i;
    double f;
} tpl_token;

/* Splits normalised source into tokens (array malloc'ed into *out, free with free()). Strings
 * are decoded into `ar`. Errors are positioned. */
lnx_status tpl_lex(tpl_arena *ar, const char *src, size_t len, tpl_token **out, size_t *count);

/* ---- values --------------------------------------------------------------------------------- */

enum tpl_kind {
    TV_UNDEF,
    TV_NONE,
    TV_BOOL,
    TV_INT,
    TV_FLOAT,
    TV_STR,
    TV_LIST,   /* native list or tuple */
    TV_DICT,   /* native dict */
    TV_JSON,   /* borrowed jansson array or object */
    TV_NS,     /* namespace(): a mutable dict */
    TV_LOOP,
    TV_FUNC,
};

enum tpl_func { FN_RAISE, FN_RANGE, FN_NAMESPACE, FN_STRFTIME };

typedef struct tpl_list tpl_list;
typedef struct tpl_dict tpl_dict;
typedef struct tpl_loop tpl_loop;
typedef struct tpl_node tpl_node;

typedef struct tpl_str {
    const char *p;
    size_t n;
} tpl_str;

typedef struct tpl_value {
    uint8_t kind;
    union {
        int b;
        int64_t i;
        double f;
        tpl_str s;
        tpl_list *list;
        tpl_dict *dict;
        const json_t *json;
        tpl_loop *loop;
        int fn;
        const tpl_node *origin;  /* TV_UNDEF: the expression that gave it (may be NULL) */
    } u;
} tpl_value;

struct tpl_list {
    size_t n;
    tpl_value *items;
    int tuple;
};

struct tpl_dict {
    size_t n, cap;
    tpl_str *keys;
    tpl_value *vals;
};

struct tpl_loop {
    int64_t index0, length;
    const tpl_value *items;
};

/* ---- syntax tree ---------------------------------------------------------------------------- */

enum tpl_node_kind {
    /* statements */
    N_BODY, N_TEXT, N_PRINT, N_IF, N_FOR, N_SET, N_BREAK, N_CONTINUE,
    /* expressions */
    N_CONST, N_NAME, N_GETATTR, N_GETITEM, N_SLICE, N_CALL, N_KWARG, N_FILTER, N_TEST,
    N_BINOP, N_NEG, N_POS, N_NOT, N_AND, N_OR, N_COMPARE, N_OPERAND, N_CONCAT, N_COND,
    N_LIST, N_TUPLE, N_DICT,
};

struct tpl_node {
    uint8_t kind;
    uint8_t op;      /* N_BINOP, N_OPERAND: enum tpl_op; N_TEST: 1 when negated */
    size_t pos;
    tpl_node *a, *b, *c, *d;
    tpl_node **kids;  /* body, arguments, items, keys */
    size_t nkids;
    tpl_node **kids2; /* else body, keyword arguments, values */
    size_t nkids2;
    tpl_str str;      /* names, text */
    tpl_value val;    /* N_CONST */
};

/* ---- template ------------------------------------------------------------------------------- */

struct lnx_template {
    tpl_arena ar;
    const char *src;  /* normalised source */
    size_t len;
    tpl_node *root;
};

/* Formats "template:LINE:COLUMN: <message>" as the error detail and returns st. */
lnx_status tpl_error_at(const char *src, size_t pos, lnx_status st, const char *fmt, ...) LNX_PRINTF(4, 5);

/* ---- rendering ------------------------------------------------------------------------------ */

typedef struct tpl_frame tpl_frame;

typedef struct tpl_render {
    const lnx_template *t;
    tpl_arena ar;
    tpl_buf *out;       /* where text goes now (a {% set %} block redirects it) */
    tpl_frame *scope;   /* innermost variable scope */
    uint64_t steps;
    int depth;
} tpl_render;

/* Arguments of a call, filter, test or method: positional values then keyword values. */
typedef struct tpl_args {
    const tpl_value *pos;
    size_t npos;
    const tpl_str *kwnames;
    const tpl_value *kw;
    size_t nkw;
} tpl_args;

/* Positioned LNX_E_TEMPLATE-style error (printf format). */
lnx_status tpl_fail(const tpl_render *r, size_t pos, lnx_status st, const char *fmt, ...) LNX_PRINTF(4, 5);
/* Counts work proportional to `bytes` scanned against the step budget (LNX_E_LIMIT past it). */
lnx_status tpl_charge(tpl_render *r, size_t pos, size_t bytes);
/* The error for using an undefined value (names the variable or attribute it came from). */
lnx_status tpl_undefined_error(const tpl_render *r, size_t pos, const tpl_value *v);

static inline tpl_value tpl_none(void)
{
    tpl_value v = {.kind = TV_NONE};
    return v;
}
static inline tpl_value tpl_bool(int b)
{
    tpl_value v = {.kind = TV_BOOL, .u.b = b != 0};
    return v;
}
static inline tpl_value tpl_int(int64_t i)
{
    tpl_value v = {.kind = TV_INT, .u.i = i};
    return v;
}
static inline tpl_value tpl_float(double f)
{
    tpl_value v = {.kind = TV_FLOAT, .u.f = f};
    return v;
}
static inline tpl_value tpl_string(const char *p, size_t n)
{
    tpl_value v = {.kind = TV_STR, .u.s = {p, n}};
    return v;
}
static inline tpl_value tpl_undef(const tpl_node *origin)
{
    tpl_value v = {.kind = TV_UNDEF, .u.origin = origin};
    return v;
}

/* a <op> b for the arithmetic operators (enum tpl_op) with Python semantics (template_eval.c). */
lnx_status tpl_binop(tpl_render *r, size_t pos, int op, const tpl_value *a, const tpl_value *b, tpl_value *out);

/* Values (template_value.c). */
tpl_value tpl_from_json(const json_t *j);
const char *tpl_type_name(const tpl_value *v);
int tpl_truthy(const tpl_value *v);
int tpl_is_list(const tpl_value *v);
int tpl_is_dict(const tpl_value *v);
size_t tpl_list_len(const tpl_value *v);
tpl_value tpl_list_get(const tpl_value *v, size_t i);
/* Looks key up in a dict or namespace; 0 when absent. */
int tpl_dict_find(const tpl_value *d, const char *key, size_t n, tpl_value *out);
lnx_status tpl_dict_entries(tpl_render *r, const tpl_value *d, tpl_str **keys, tpl_value **vals, size_t *n);
lnx_status tpl_new_list(tpl_render *r, size_t n, tpl_value *out);
/* An empty native dict (kind TV_DICT; the caller may retag it TV_NS). */
lnx_status tpl_new_dict(tpl_render *r, tpl_value *out);
/* Sets key to v in a native dict or namespace (replacing an existing key). */
lnx_status tpl_dict_set(tpl_render *r, tpl_dict *d, tpl_str key, const tpl_value *v);
/* Items of an iterable (dict keys, string characters; undefined is empty). */
lnx_status tpl_iterate(tpl_render *r, size_t pos, const tpl_value *v, const tpl_value **items, size_t *n);
lnx_status tpl_write_str(tpl_render *r, tpl_buf *b, const tpl_value *v);
lnx_status tpl_write_repr(tpl_render *r, tpl_buf *b, const tpl_value *v, int depth);
/* str(v); strings are returned as they are, others formatted into the arena. */
lnx_status tpl_to_str(tpl_render *r, const tpl_value *v, tpl_str *out);
typedef struct tpl_json_opts {
    int pretty;          /* indent was given: newlines, then indent_str per level */
    tpl_str indent_str;
    tpl_str item_sep, key_sep;
    int sort_keys, ascii;
} tpl_json_opts;
lnx_status tpl_write_json(tpl_render *r, size_t pos, tpl_buf *b, const tpl_value *v, const tpl_json_opts *o,
                          int level);
lnx_status tpl_equal(tpl_render *r, size_t pos, const tpl_value *a, const tpl_value *b, int *eq, int depth);
/* Python ordering of numbers, strings and lists: *cmp <0, 0, >0. */
lnx_status tpl_order(tpl_render *r, size_t pos, const tpl_value *a, const tpl_value *b, int *cmp, int depth);
/* x.name and x[key] as Jinja's environment resolves them; `origin` labels undefined results. */
lnx_status tpl_getattr(tpl_render *r, const tpl_node *origin, const tpl_value *obj, tpl_str name, tpl_value *out);
lnx_status tpl_getitem(tpl_render *r, const tpl_node *origin, const tpl_value *obj, const tpl_value *key,
                       tpl_value *out);
lnx_status tpl_slice(tpl_render *r, size_t pos, const tpl_value *obj, const tpl_value *start, const tpl_value *stop,
                     const tpl_value *step, tpl_value *out);

/* Builtins (template_builtins.c). */
lnx_status tpl_call_filter(tpl_render *r, size_t pos, tpl_str name, const tpl_value *self, const tpl_args *a,
                           tpl_value *out);
lnx_status tpl_call_test(tpl_render *r, size_t pos, tpl_str name, const tpl_value *self, const tpl_args *a,
                         int *out);
lnx_status tpl_call_method(tpl_render *r, size_t pos, const tpl_value *self, tpl_str name, const tpl_args *a,
                           tpl_value *out);
lnx_status tpl_call_global(tpl_render *r, size_t pos, int fn, const tpl_args *a, tpl_value *out);

/* Filter and test names known to the evaluator (checked when parsing). */
int tpl_filter_exists(const char *name, size_t n);
int tpl_test_exists(const char *name, size_t n);

#endif
